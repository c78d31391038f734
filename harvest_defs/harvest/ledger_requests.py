"""The ledger's request journal: one row per request hash — the cache that decides what is never sent again.

States: ``submitted`` (in a batch, in flight), ``succeeded`` / ``failed`` (an outcome is on disk in that
batch's raw results), ``lost`` (its batch can no longer be read). The hash is the request's *content*
hash, never its custom_id, so a renamed document (a new id, the same prompt) is a cache hit; ``custom_id``
and ``batch_id`` record where the result lives: which raw file, under which id it was sent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager

SUBMITTED = "submitted"
SUCCEEDED = "succeeded"
FAILED = "failed"
# (request state) in a lost batch: neither cached nor sent again by a plain re-run; see ``rearm_lost``.
LOST_REQUEST = "lost"


class RequestsMixin:
    """Request-level methods of :class:`harvest_defs.harvest.ledger.BatchLedger`."""

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def record_requests(self, provider: str, batch_id: str, items: Iterable[tuple[str, str | None]]) -> None:
        """Mark requests as in flight in ``batch_id`` (request_hash, custom_id)."""
        now = time.time()
        with self._write() as con:
            con.executemany(
                "INSERT INTO requests (provider, request_hash, custom_id, batch_id, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, request_hash) DO UPDATE SET "
                "custom_id = excluded.custom_id, batch_id = excluded.batch_id, state = excluded.state, "
                "updated_at = excluded.updated_at",
                ((provider, h, cid, batch_id, SUBMITTED, now) for h, cid in items),
            )

    def record_outcomes(
        self, provider: str, outcomes: Iterable[tuple[str, bool]], batch_id: str | None = None
    ) -> None:
        """Final state per request hash: succeeded requests are never sent again, failed ones are.

        With ``batch_id``, an outcome only lands where that batch is the hash's latest submission: a
        re-collected old batch (whose request has since been resent and succeeded) must not overwrite
        the newer outcome, nor point the cache at the older raw file.
        """
        now = time.time()
        with self._write() as con:
            con.executemany(
                "INSERT INTO requests (provider, request_hash, batch_id, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, request_hash) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at "
                "WHERE excluded.batch_id IS NULL OR requests.batch_id IS NULL "
                "OR requests.batch_id = excluded.batch_id",
                ((provider, h, batch_id, SUCCEEDED if ok else FAILED, now) for h, ok in outcomes),
            )

    def _known(self, provider: str, request_hashes: Iterable[str], columns: str) -> list[tuple]:
        """``columns`` of every known hash among ``request_hashes``: one join (O(n)), not n queries.

        ``CROSS JOIN`` fixes SQLite's loop order: ``wanted`` outside, one primary-key probe of
        ``requests`` per wanted hash. With a plain ``JOIN`` (and no ANALYZE statistics) SQLite scanned
        every request of the provider per call: O(ledger) per window, so a 10M-prompt submit was
        quadratic (7.4 s vs 0.28 s per 50k-hash lookup against a 2.5M-row ledger).
        """
        with self._connect() as con:
            con.execute("BEGIN")  # one transaction for the temp inserts, not one per row
            con.execute("CREATE TEMP TABLE wanted (h TEXT PRIMARY KEY) WITHOUT ROWID")
            con.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((h,) for h in request_hashes))
            rows = con.execute(
                f"SELECT {columns} FROM wanted w CROSS JOIN requests r "
                "ON r.provider = ? AND r.request_hash = w.h",
                (provider,),
            ).fetchall()
            con.execute("ROLLBACK")
        return rows

    def request_states(self, provider: str, request_hashes: Iterable[str]) -> dict[str, str]:
        """State of each *known* hash."""
        return dict(self._known(provider, request_hashes, "r.request_hash, r.state"))

    def request_locations(
        self, provider: str, request_hashes: Iterable[str]
    ) -> dict[str, tuple[str, str, str]]:
        """hash -> (state, batch_id, custom_id it was sent under), for every known hash: where results are."""
        rows = self._known(provider, request_hashes, "r.request_hash, r.state, r.batch_id, r.custom_id")
        return {h: (state, batch_id, custom_id) for h, state, batch_id, custom_id in rows}

    def request_counts_by_state(self, provider: str) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT state, count(*) FROM requests WHERE provider = ? GROUP BY state", (provider,)
            ).fetchall()
        return {state: int(n) for state, n in rows}

    def rearm_lost(self, provider: str, batch_id: str | None = None) -> int:
        """Let the next submit send a lost batch's requests again (a deliberate re-payment)."""
        clause, params = ("AND batch_id = ?", (batch_id,)) if batch_id else ("", ())
        with self._write() as con:
            cursor = con.execute(
                f"UPDATE requests SET state = ?, updated_at = ? WHERE provider = ? AND state = ? {clause}",
                (FAILED, time.time(), provider, LOST_REQUEST, *params),
            )
        return cursor.rowcount
