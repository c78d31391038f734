"""Placeholder: routes are being written."""

from __future__ import annotations

from starlette.routing import BaseRoute

from harvest_defs.emulator.state import EmulatorState


def routes(state: EmulatorState) -> list[BaseRoute]:
    return []
