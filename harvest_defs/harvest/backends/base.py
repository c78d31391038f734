"""The backend protocol: what a place to keep state must provide, so callers never branch on its name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harvest_defs.harvest.ledger import BatchLedger


class Backend(Protocol):
    """One implementation per place state can live (``local``: files; ``postgres``: a server)."""

    name: str

    def ledger(self, ledger_path: Path) -> BatchLedger:
        """The batch ledger; ``ledger_path`` is the local file the embedded backend uses."""
        ...
