"""Where state lives: one settings object read in one place, so a backend is a switch, not a fork.

``HARVEST_BACKEND=duckdb`` (the default) keeps every piece of state in local files under
``HARVEST_HOME`` (SQLite ledger, raw results, DuckDB warehouse and index): right for ``dagster dev`` and one
machine, and exactly what existed before backends. ``HARVEST_BACKEND=postgres`` puts the ledger, the
warehouse and the RAG index in Postgres (``HARVEST_POSTGRES_DSN``) and, with ``HARVEST_STORAGE_URL``, raw
results on object storage, so run pods with no shared disk see one state. The DSN may hold a password:
it is kept out of ``repr`` and never logged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal

BACKEND_ENV = "HARVEST_BACKEND"
DSN_ENV = "HARVEST_POSTGRES_DSN"
SCHEMA_ENV = "HARVEST_POSTGRES_SCHEMA"
STORAGE_ENV = "HARVEST_STORAGE_URL"

BackendName = Literal["duckdb", "postgres"]
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class BackendSettings:
    """The resolved switch. Build it with :meth:`resolve` (explicit values win over the environment)."""

    name: BackendName = "duckdb"
    postgres_dsn: str | None = field(default=None, repr=False)
    postgres_schema: str = "harvest"
    storage_url: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ("duckdb", "postgres"):
            raise ValueError(f"{BACKEND_ENV} must be 'duckdb' or 'postgres', not {self.name!r}")
        if self.name == "postgres" and not self.postgres_dsn:
            raise ValueError(f"the postgres backend needs a DSN: set {DSN_ENV}")
        if not _SCHEMA_RE.match(self.postgres_schema):
            raise ValueError(f"{SCHEMA_ENV} must be a plain lower-case identifier")

    @classmethod
    def resolve(
        cls,
        name: str | None = None,
        postgres_dsn: str | None = None,
        postgres_schema: str | None = None,
        storage_url: str | None = None,
    ) -> BackendSettings:
        """Explicit arguments (e.g. resource fields) first, then ``HARVEST_*`` variables, then defaults."""
        chosen = (name or os.environ.get(BACKEND_ENV) or "duckdb").strip().lower()
        return cls(
            name=chosen,  # type: ignore[arg-type]  # validated in __post_init__
            postgres_dsn=postgres_dsn or os.environ.get(DSN_ENV) or None,
            postgres_schema=postgres_schema or os.environ.get(SCHEMA_ENV) or "harvest",
            storage_url=storage_url or os.environ.get(STORAGE_ENV) or None,
        )
