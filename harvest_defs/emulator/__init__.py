"""A local HTTP server speaking the Anthropic and Voyage wire protocols, for offline dev, tests and demo."""

from harvest_defs.emulator.config import EmulatorConfig
from harvest_defs.emulator.server import EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorServer"]
