"""The Anthropic API surface of the emulator: Messages and Message Batches (mounted by ``app.build_app``)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from harvest_defs.emulator import anthropic_batches, anthropic_messages
from harvest_defs.emulator.state import EmulatorState


def routes(state: EmulatorState) -> list[BaseRoute]:
    return [*anthropic_messages.routes(state), *anthropic_batches.routes(state)]
