"""The embedded default: the SQLite ledger file under ``HARVEST_HOME`` (what existed before backends)."""

from __future__ import annotations

from pathlib import Path

from harvest_defs.harvest.ledger import BatchLedger


class LocalBackend:
    name = "duckdb"

    def ledger(self, ledger_path: Path) -> BatchLedger:
        return BatchLedger(ledger_path)
