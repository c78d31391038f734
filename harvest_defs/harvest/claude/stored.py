"""Rows for any set of requests, rebuilt from the raw results already on disk — the content-addressed cache.

Why this exists: a cache that only says "do not send" is not enough. When a document is renamed, moved
or reverted to an earlier text, its request (same content) already has a result, so nothing is sent —
but the destination must still get a row for the document's *current* id holding *that* result, or it
keeps serving the previous version. The ledger knows, per request hash, which batch holds the outcome
and under which custom_id it was sent; the raw JSONL of that batch (kept since it was downloaded) gives
the row, relabelled with the id and prompt asked for now. No request is ever bought twice for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from harvest_defs.harvest.claude.errors import ResultsArchivedError
from harvest_defs.harvest.claude.results import CLAUDE_MESSAGES_SCHEMA
from harvest_defs.harvest.claude.settings import PROVIDER
from harvest_defs.harvest.ledger import COLLECTED, ENDED, FAILED, LOST, SUBMITTED, SUCCEEDED

if TYPE_CHECKING:
    from harvest_defs.harvest.claude.collect import CollectMixin
    from harvest_defs.harvest.claude.prompts import PreparedRequest


@dataclass
class StoredRowsReport:
    """What :func:`stored_rows` could not give a row for (yet), by request hash."""

    in_flight: set[str] = field(default_factory=set)  # in a batch that has not ended: a later run gets it
    missing: set[str] = field(default_factory=set)  # never submitted, or its batch is lost
    lost_batches: dict[str, str] = field(default_factory=dict)  # batch id -> why it can no longer be read
    collected_batches: set[str] = field(default_factory=set)  # ended batches collected (outcomes recorded)
    rows: int = 0


def wanted_table(requests: Sequence[PreparedRequest] | pa.Table) -> pa.Table:
    """(custom_id, request_hash, prompt) per wanted row; a table passes through (a spooled window)."""
    if isinstance(requests, pa.Table):
        return requests
    return pa.table(
        {
            "custom_id": pa.array([r.custom_id for r in requests], pa.string()),
            "request_hash": pa.array([r.request_hash for r in requests], pa.string()),
            "prompt": pa.array([r.text for r in requests], pa.string()),
        }
    )


def _relabel(table: pa.Table, wanted: pa.Table) -> pa.Table:
    """The batch's rows joined to the wanted (custom_id, prompt) by request hash, in the fixed schema."""
    joined = table.drop_columns(["custom_id", "prompt"]).join(wanted, keys="request_hash", join_type="inner")
    return joined.select(CLAUDE_MESSAGES_SCHEMA.names).cast(CLAUDE_MESSAGES_SCHEMA)


def stored_rows(
    harvester: CollectMixin, requests: Sequence[PreparedRequest] | pa.Table, report: StoredRowsReport
) -> Iterator[pa.Table]:
    """Arrow tables with one row per request in ``requests`` whose outcome is (or can now be) on disk.

    A batch that ended but was never collected is collected here (download, outcomes to the ledger);
    a batch whose results can no longer be read is marked lost. ``report`` says what had no row.
    """
    wanted = wanted_table(requests)
    if not wanted.num_rows:
        return
    locations = harvester.ledger.request_locations(PROVIDER, set(wanted.column("request_hash").to_pylist()))
    groups: dict[str, set[str]] = {}
    statuses: dict[str, str] = {}
    for request_hash in set(wanted.column("request_hash").to_pylist()):
        state, batch_id, _ = locations.get(request_hash, (None, None, None))
        if state not in (SUCCEEDED, FAILED, SUBMITTED) or not batch_id:
            report.missing.add(request_hash)
            continue
        if batch_id not in statuses:
            row = harvester.ledger.get(batch_id)
            statuses[batch_id] = row.status if row is not None else LOST
        status = statuses[batch_id]
        if status == LOST:
            report.missing.add(request_hash)
        elif state == SUBMITTED and status not in (ENDED, COLLECTED):
            report.in_flight.add(request_hash)
        else:
            groups.setdefault(batch_id, set()).add(request_hash)
    for batch_id, hashes in groups.items():
        subset = wanted.filter(pc.is_in(wanted.column("request_hash"), pa.array(sorted(hashes), pa.string())))
        record = statuses[batch_id] != COLLECTED
        if record:
            report.collected_batches.add(batch_id)
        try:
            for table in harvester.collect(batch_id, record=record):
                mine = table.filter(pc.is_in(table.column("request_hash"), subset.column("request_hash")))
                if mine.num_rows:
                    rows = _relabel(mine, subset)
                    report.rows += rows.num_rows
                    yield rows
        except ResultsArchivedError as exc:
            harvester.ledger.mark_lost(batch_id, str(exc))
            report.lost_batches[batch_id] = str(exc)
            report.missing.update(hashes)
