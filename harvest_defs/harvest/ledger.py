"""The batch ledger: a SQLite journal of every batch we create and every request we send.

Why it exists: a batch costs money the moment it is created, and a Message Batch can take 24 h. dlt's
state is committed only when extract finishes (measured: a crash loses it), so "which batches did we
already pay for?" must live outside dlt, in a file every process can read: Dagster run workers, the
sensor daemon and the CLI. SQLite in WAL mode gives that: many readers, one writer at a time, and a
committed row survives a SIGKILL of the writer.

Two tables:
- ``batches``: one row per (provider, request-set hash, chunk). It is *reserved* before the create call
  and gets its batch id the moment the API answers, so a restart finds the batch instead of paying again.
- ``requests``: one row per request hash — submitted (in a batch), succeeded or failed. This is the
  cache: succeeded and in-flight requests are never sent again; failed ones are retried by a re-run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harvest_defs.harvest.ledger_requests import (
    FAILED,
    LOST_REQUEST,
    SUBMITTED,
    SUCCEEDED,
    RequestsMixin,
)
from harvest_defs.harvest.ledger_submissions import SUBMISSIONS_SCHEMA, Submission, SubmissionsMixin

CREATING = "creating"
IN_PROGRESS = "in_progress"
ENDED = "ended"
COLLECTED = "collected"
ABANDONED = "abandoned"
# The API no longer knows the batch (404) or its results are gone (archived): nothing more can be read
# from it. Sensors skip it; its requests stay unsent until someone resubmits them on purpose (paying).
LOST = "lost"

__all__ = [
    "ABANDONED",
    "COLLECTED",
    "CREATING",
    "ENDED",
    "FAILED",
    "IN_PROGRESS",
    "LOST",
    "LOST_REQUEST",
    "SUBMITTED",
    "SUCCEEDED",
    "BatchLedger",
    "LedgerBatch",
    "Submission",
]

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
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    collected_at REAL,
    PRIMARY KEY (provider, request_set_hash, chunk_index)
);
CREATE INDEX IF NOT EXISTS batches_status ON batches (provider, status, partition_key);
CREATE TABLE IF NOT EXISTS requests (
    provider TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    custom_id TEXT,
    batch_id TEXT,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (provider, request_hash)
);
"""

_COLUMNS = (
    "provider, request_set_hash, chunk_index, partition_key, batch_id, status, request_count, meta, "
    "request_counts, created_at, ended_at, collected_at"
)


@dataclass(frozen=True)
class LedgerBatch:
    """One batch as the ledger knows it; ``batch_id`` is None while the create call is unanswered."""

    provider: str
    request_set_hash: str
    chunk_index: int
    partition_key: str | None
    batch_id: str | None
    status: str
    request_count: int
    meta: dict[str, Any]
    request_counts: dict[str, int] | None
    created_at: float
    ended_at: float | None
    collected_at: float | None
    # True only for the caller whose ``reserve`` inserted (or re-armed) the row: that caller, and no
    # other process racing it, creates the batch. A non-fresh row without a batch id is either being
    # created right now by another process or was left by a crash: reconcile with the server.
    fresh: bool = False


def _row_to_batch(row: tuple[Any, ...]) -> LedgerBatch:
    return LedgerBatch(
        provider=row[0],
        request_set_hash=row[1],
        chunk_index=int(row[2]),
        partition_key=row[3],
        batch_id=row[4],
        status=row[5],
        request_count=int(row[6]),
        meta=json.loads(row[7] or "{}"),
        request_counts=json.loads(row[8]) if row[8] else None,
        created_at=float(row[9]),
        ended_at=row[10],
        collected_at=row[11],
    )


class BatchLedger(RequestsMixin, SubmissionsMixin):
    """Process-safe journal of batches and requests (see the module docstring for why)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            con.executescript(SUBMISSIONS_SCHEMA)

    def __repr__(self) -> str:
        return f"BatchLedger({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection per operation: safe across threads, processes and forks."""
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- batches ----------------------------------------------------------------------------------
    def reserve(
        self,
        provider: str,
        request_set_hash: str,
        chunk_index: int,
        request_count: int,
        partition_key: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> LedgerBatch:
        """Claim a chunk before paying for it; returns the existing row if one is already there.

        An ``abandoned`` row (its create failed for good) is re-armed, so a later run may try again.
        """
        now = time.time()
        with self._write() as con:
            cursor = con.execute(
                "INSERT INTO batches (provider, request_set_hash, chunk_index, partition_key, status, "
                "request_count, meta, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (provider, request_set_hash, chunk_index) DO UPDATE SET "
                "status = excluded.status, created_at = excluded.created_at, "
                "updated_at = excluded.updated_at, partition_key = excluded.partition_key "
                "WHERE batches.status = 'abandoned'",
                (
                    provider,
                    request_set_hash,
                    chunk_index,
                    partition_key,
                    CREATING,
                    request_count,
                    json.dumps(dict(meta or {})),
                    now,
                    now,
                ),
            )
            fresh = cursor.rowcount == 1
        found = self.find(provider, request_set_hash, chunk_index)
        assert found is not None
        return replace(found, fresh=fresh)

    def record_created(
        self,
        provider: str,
        request_set_hash: str,
        chunk_index: int,
        batch_id: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the batch id the moment the API returns it (the row becomes ``in_progress``)."""
        with self._write() as con:
            current = con.execute(
                "SELECT meta FROM batches WHERE provider = ? AND request_set_hash = ? AND chunk_index = ?",
                (provider, request_set_hash, chunk_index),
            ).fetchone()
            merged = {**json.loads(current[0] if current else "{}"), **dict(meta or {})}
            con.execute(
                "UPDATE batches SET batch_id = ?, status = ?, meta = ?, updated_at = ? "
                "WHERE provider = ? AND request_set_hash = ? AND chunk_index = ?",
                (
                    batch_id,
                    IN_PROGRESS,
                    json.dumps(merged),
                    time.time(),
                    provider,
                    request_set_hash,
                    chunk_index,
                ),
            )

    def update_meta(self, provider: str, request_set_hash: str, chunk_index: int, **meta: Any) -> None:
        """Remember intermediate facts (e.g. an uploaded file id) so a restart reuses them."""
        with self._write() as con:
            current = con.execute(
                "SELECT meta FROM batches WHERE provider = ? AND request_set_hash = ? AND chunk_index = ?",
                (provider, request_set_hash, chunk_index),
            ).fetchone()
            merged = {**json.loads(current[0] if current else "{}"), **meta}
            con.execute(
                "UPDATE batches SET meta = ?, updated_at = ? "
                "WHERE provider = ? AND request_set_hash = ? AND chunk_index = ?",
                (json.dumps(merged), time.time(), provider, request_set_hash, chunk_index),
            )

    def abandon(self, provider: str, request_set_hash: str, chunk_index: int) -> None:
        """The create call failed for good (e.g. a 4xx): free the slot so a later run may retry it."""
        with self._write() as con:
            con.execute(
                "UPDATE batches SET status = ?, updated_at = ? "
                "WHERE provider = ? AND request_set_hash = ? AND chunk_index = ? AND batch_id IS NULL",
                (ABANDONED, time.time(), provider, request_set_hash, chunk_index),
            )

    def find(self, provider: str, request_set_hash: str, chunk_index: int) -> LedgerBatch | None:
        with self._connect() as con:
            row = con.execute(
                f"SELECT {_COLUMNS} FROM batches "
                "WHERE provider = ? AND request_set_hash = ? AND chunk_index = ?",
                (provider, request_set_hash, chunk_index),
            ).fetchone()
        return _row_to_batch(row) if row else None

    def get(self, batch_id: str) -> LedgerBatch | None:
        with self._connect() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return _row_to_batch(row) if row else None

    def _select(
        self, provider: str | None, status: str | None, partition_key: str | None
    ) -> list[LedgerBatch]:
        clauses, params = [], []
        if provider is not None:
            clauses.append("provider = ?")
            params.append(provider)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if partition_key is not None:
            clauses.append("partition_key = ?")
            params.append(partition_key)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_COLUMNS} FROM batches {where} ORDER BY created_at, chunk_index", params
            ).fetchall()
        return [_row_to_batch(row) for row in rows]

    def uncreated(self, provider: str) -> list[LedgerBatch]:
        """Reserved chunks whose create call never got an answer recorded (a crash in that window)."""
        return self._select(provider, CREATING, None)

    def in_flight(self, provider: str, partition_key: str | None = None) -> list[LedgerBatch]:
        return self._select(provider, IN_PROGRESS, partition_key)

    def ended_uncollected(self, provider: str, partition_key: str | None = None) -> list[LedgerBatch]:
        return self._select(provider, ENDED, partition_key)

    def batches(self, provider: str | None = None) -> list[LedgerBatch]:
        return self._select(provider, None, None)

    def mark_ended(self, batch_id: str, request_counts: Mapping[str, int] | None = None) -> None:
        """Ended (results ready); a collected batch stays collected."""
        now = time.time()
        with self._write() as con:
            con.execute(
                "UPDATE batches SET status = ?, ended_at = COALESCE(ended_at, ?), updated_at = ?, "
                "request_counts = COALESCE(?, request_counts) WHERE batch_id = ? AND status != ?",
                (
                    ENDED,
                    now,
                    now,
                    json.dumps(dict(request_counts)) if request_counts is not None else None,
                    batch_id,
                    COLLECTED,
                ),
            )

    def mark_lost(self, batch_id: str, reason: str) -> None:
        """The batch can never be read again: record why, and park its unfinished requests as lost.

        Requests that already have an outcome keep it (their results are on disk); the others would
        otherwise look "in flight" forever and block every later submit of the same content.
        """
        now = time.time()
        with self._write() as con:
            row = con.execute("SELECT meta FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            meta = {**json.loads(row[0] if row else "{}"), "lost_reason": reason}
            con.execute(
                "UPDATE batches SET status = ?, meta = ?, updated_at = ? WHERE batch_id = ?",
                (LOST, json.dumps(meta), now, batch_id),
            )
            con.execute(
                "UPDATE requests SET state = ?, updated_at = ? WHERE batch_id = ? AND state = ?",
                (LOST_REQUEST, now, batch_id, SUBMITTED),
            )

    def lost(self, provider: str | None = None) -> list[LedgerBatch]:
        return self._select(provider, LOST, None)

    def update_counts(self, batch_id: str, request_counts: Mapping[str, int]) -> None:
        with self._write() as con:
            con.execute(
                "UPDATE batches SET request_counts = ?, updated_at = ? WHERE batch_id = ?",
                (json.dumps(dict(request_counts)), time.time(), batch_id),
            )

    def mark_collected(self, batch_id: str) -> None:
        """Called only after the caller's load succeeded: until then the batch stays collectable."""
        now = time.time()
        with self._write() as con:
            con.execute(
                "UPDATE batches SET status = ?, ended_at = COALESCE(ended_at, ?), collected_at = ?, "
                "updated_at = ? WHERE batch_id = ?",
                (COLLECTED, now, now, now, batch_id),
            )
