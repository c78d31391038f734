"""Backends: where the harvest keeps its state. Chosen in one place (:func:`get_backend`).

Callers ask for a ledger through :func:`open_ledger`; with no settings it reads ``HARVEST_BACKEND``, so
library code, the CLI and Dagster runs pick the same backend from the same environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harvest_defs.harvest.backends.base import Backend
from harvest_defs.harvest.backends.settings import (
    BACKEND_ENV,
    DSN_ENV,
    SCHEMA_ENV,
    STORAGE_ENV,
    BackendSettings,
)

if TYPE_CHECKING:
    from harvest_defs.harvest.ledger import BatchLedger

__all__ = [
    "BACKEND_ENV",
    "DSN_ENV",
    "SCHEMA_ENV",
    "STORAGE_ENV",
    "Backend",
    "BackendSettings",
    "get_backend",
    "open_ledger",
]


def get_backend(settings: BackendSettings | None = None) -> Backend:
    """The one place a backend name becomes an implementation."""
    settings = settings or BackendSettings.resolve()
    if settings.name == "postgres":
        from harvest_defs.harvest.backends.postgres import PostgresBackend

        assert settings.postgres_dsn is not None  # checked by BackendSettings
        return PostgresBackend(settings.postgres_dsn, settings.postgres_schema)
    from harvest_defs.harvest.backends.local import LocalBackend

    return LocalBackend()


def open_ledger(location: str | Path | BatchLedger, settings: BackendSettings | None = None) -> BatchLedger:
    """A ledger for ``location``: an already opened ledger is passed through, a path goes to the backend."""
    from harvest_defs.harvest.ledger import BatchLedger

    if isinstance(location, BatchLedger):
        return location
    return get_backend(settings).ledger(Path(location))
