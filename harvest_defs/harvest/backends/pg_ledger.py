"""The batch ledger on Postgres: the same protocol as the SQLite file, for many processes on many nodes.

Why a subclass and not a second ledger: every state transition (reserve before create, record the id the
moment the API answers, request outcomes, lost batches, submissions) is one SQL statement in
:class:`~harvest_defs.harvest.ledger.BatchLedger`, written in SQL both engines accept. Only the plumbing
differs: connections, placeholders (``?`` becomes ``%s``), the schema's types, and two statements that use
SQLite-only features (temp ``WITHOUT ROWID`` tables, ``lastrowid``).

Concurrency: each write is one transaction that first takes a transaction-scoped advisory lock on the
ledger's schema (``pg_advisory_xact_lock``), the equivalent of SQLite's ``BEGIN IMMEDIATE``: writers are
serialized, so the read-modify-write of ``meta`` and the ``ON CONFLICT`` re-arm of an abandoned row see a
consistent row; readers never block (MVCC). A committed row survives the writer's SIGKILL (Postgres
rolls back only uncommitted transactions).
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from harvest_defs.harvest.ledger import BatchLedger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    provider TEXT NOT NULL,
    request_set_hash TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    partition_key TEXT,
    batch_id TEXT UNIQUE,
    status TEXT NOT NULL,
    request_count INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    request_counts TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    collected_at DOUBLE PRECISION,
    PRIMARY KEY (provider, request_set_hash, chunk_index)
);
CREATE INDEX IF NOT EXISTS batches_status ON batches (provider, status, partition_key);
CREATE TABLE IF NOT EXISTS requests (
    provider TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    custom_id TEXT,
    batch_id TEXT,
    state TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (provider, request_hash)
);
CREATE INDEX IF NOT EXISTS requests_batch ON requests (batch_id);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id BIGSERIAL PRIMARY KEY,
    provider TEXT NOT NULL,
    partition_key TEXT,
    batch_ids TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS submissions_open ON submissions (provider, closed_at, partition_key);
"""


def _pg_sql(sql: str) -> str:
    """The shared statements use qmark placeholders and no literal ``%``: translate to psycopg's."""
    return sql.replace("?", "%s")


class _Connection:
    """The slice of ``sqlite3.Connection`` the shared ledger code uses, over a psycopg connection."""

    def __init__(self, con: psycopg.Connection[Any]) -> None:
        self._con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cursor = self._con.cursor()
        cursor.execute(_pg_sql(sql), tuple(params))
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self._con.cursor()
        cursor.executemany(_pg_sql(sql), rows)
        return cursor


class PostgresLedger(BatchLedger):
    """:class:`BatchLedger` whose tables live in one Postgres schema (``HARVEST_POSTGRES_SCHEMA``)."""

    def __init__(self, dsn: str, schema: str = "harvest") -> None:
        self._dsn = dsn
        self.schema = schema
        self.path = Path(f"postgresql:{schema}")  # for messages only: there is no local file
        self._lock_key = zlib.crc32(f"harvest-ledger:{schema}".encode())
        self._local = threading.local()
        with self._raw() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))  # racing creators
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for statement in filter(str.strip, _SCHEMA.split(";")):
                con.execute(statement)

    def __repr__(self) -> str:  # never the DSN
        return f"PostgresLedger(schema={self.schema!r})"

    def __getstate__(self) -> dict[str, Any]:  # picklable for multiprocessing: connections stay behind
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @contextmanager
    def _raw(self) -> Iterator[psycopg.Connection[Any]]:
        """One autocommit connection per thread and process, reopened after a fork or a broken link."""
        con: psycopg.Connection[Any] | None = getattr(self._local, "con", None)
        if con is None or con.closed or con.broken or getattr(self._local, "pid", None) != os.getpid():
            con = psycopg.connect(
                self._dsn, autocommit=True, options=f"-c search_path={self.schema}", connect_timeout=30
            )
            self._local.con, self._local.pid = con, os.getpid()
        yield con

    @contextmanager
    def _connect(self) -> Iterator[_Connection]:  # type: ignore[override]
        with self._raw() as con:
            yield _Connection(con)

    @contextmanager
    def _write(self) -> Iterator[_Connection]:  # type: ignore[override]
        with self._raw() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield _Connection(con)

    def _known(self, provider: str, request_hashes: Iterable[str], columns: str) -> list[tuple]:
        """One indexed ``= ANY`` over the whole list (no temp table needed on a server)."""
        wanted = list(dict.fromkeys(request_hashes))
        with self._raw() as con:
            rows = con.execute(
                f"SELECT {columns} FROM requests r WHERE r.provider = %s AND r.request_hash = ANY(%s)",
                (provider, wanted),
            ).fetchall()
        return [tuple(row) for row in rows]

    def record_submission(self, provider: str, partition_key: str | None, batch_ids: Sequence[str]) -> int:
        with self._write() as con:
            row = con.execute(
                "INSERT INTO submissions (provider, partition_key, batch_ids, created_at) "
                "VALUES (?, ?, ?, ?) RETURNING submission_id",
                (provider, partition_key, json.dumps(list(dict.fromkeys(batch_ids))), time.time()),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def drop(self) -> None:
        """Remove the schema and everything in it (tests and ``harvest`` resets; never called implicitly)."""
        with self._raw() as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
