"""The strict SDK clients the emulator tests talk through (one definition for every test module)."""

from __future__ import annotations

import anthropic

from harvest_defs.emulator import EmulatorServer


def client(emulator: EmulatorServer) -> anthropic.Anthropic:
    """The unmodified SDK with strict response validation: a shape the API would not send fails here."""
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url=emulator.anthropic_base_url,
        _strict_response_validation=True,
        max_retries=0,
    )
