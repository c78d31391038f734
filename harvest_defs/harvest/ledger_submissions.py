"""Submissions: "partition P asked for these batches" — the unit a sensor turns into one collect run.

Why not batches alone: a submit whose every request is a cache hit (a revert, a rename, a deleted
document, a removed collection) creates no batch, yet the partition's tables must still be rewritten to
the current corpus. And a partition may wait on a batch another partition created (the same text in both).
So each submit records which batches it needs (possibly none); the sensor requests one collect run per
partition once all of them have ended, and that run closes every submission it satisfied.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

SUBMISSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    submission_id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    partition_key TEXT,
    batch_ids TEXT NOT NULL,
    created_at REAL NOT NULL,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS submissions_open ON submissions (provider, closed_at, partition_key);
"""


@dataclass(frozen=True)
class Submission:
    submission_id: int
    provider: str
    partition_key: str | None
    batch_ids: list[str]
    created_at: float


class SubmissionsMixin:
    """Submission methods of :class:`harvest_defs.harvest.ledger.BatchLedger`."""

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def record_submission(self, provider: str, partition_key: str | None, batch_ids: Sequence[str]) -> int:
        with self._write() as con:
            cursor = con.execute(
                "INSERT INTO submissions (provider, partition_key, batch_ids, created_at) "
                "VALUES (?, ?, ?, ?)",
                (provider, partition_key, json.dumps(list(dict.fromkeys(batch_ids))), time.time()),
            )
        return int(cursor.lastrowid or 0)

    def open_submissions(self, provider: str, partition_key: str | None = None) -> list[Submission]:
        clause, params = (
            ("AND partition_key = ?", (partition_key,)) if partition_key is not None else ("", ())
        )
        with self._connect() as con:
            rows = con.execute(
                "SELECT submission_id, provider, partition_key, batch_ids, created_at FROM submissions "
                f"WHERE provider = ? AND closed_at IS NULL {clause} ORDER BY submission_id",
                (provider, *params),
            ).fetchall()
        return [Submission(int(r[0]), r[1], r[2], list(json.loads(r[3])), float(r[4])) for r in rows]

    def close_submissions(self, submission_ids: Iterable[int]) -> None:
        ids = list(submission_ids)
        if not ids:
            return
        with self._write() as con:
            con.executemany(
                "UPDATE submissions SET closed_at = ? WHERE submission_id = ? AND closed_at IS NULL",
                ((time.time(), i) for i in ids),
            )
