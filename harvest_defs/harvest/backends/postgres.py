"""The server backend: ledger (and, through ``harvest_defs.rag.pg_index``, the index) in Postgres."""

from __future__ import annotations

from pathlib import Path

from harvest_defs.harvest.backends.pg_ledger import PostgresLedger


class PostgresBackend:
    name = "postgres"

    def __init__(self, dsn: str, schema: str = "harvest") -> None:
        self._dsn = dsn
        self.schema = schema

    def __repr__(self) -> str:  # never the DSN (it may hold a password)
        return f"PostgresBackend(schema={self.schema!r})"

    def ledger(self, ledger_path: Path) -> PostgresLedger:
        del ledger_path  # state is on the server: no local file, so any process on any node sees it
        return PostgresLedger(self._dsn, schema=self.schema)
