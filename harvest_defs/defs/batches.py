"""Polling the ledger's in-flight batches: shared by the sensors and by the collecting assets.

The sensor uses it to decide which partitions to collect; a collecting asset launched by hand (without the
sensor) uses it to find what is ready itself, so both paths agree on what "ended" means.

Why every poll is isolated: one batch the API no longer knows (404), or one that errors for any other
reason, must not stop the tick for every other batch and partition. A 404 marks the batch lost in the
ledger (the harvesters do that); any other error is logged as a warning and the batch is polled again on
the next tick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harvest_defs.harvest.ledger import IN_PROGRESS


@dataclass(frozen=True)
class EndedBatch:
    batch_id: str
    partition_key: str | None
    created_at: float = 0.0  # the ledger's; orders collects newest first (``newest_first``)


def _poll_one(poll: Callable[[str], Any], batch: Any, log: Any) -> Any | None:
    try:
        progress = poll(batch.batch_id)
    except Exception as exc:
        log.warning(f"batch {batch.batch_id} [{batch.partition_key}]: poll failed, retried next tick: {exc}")
        return None
    if getattr(progress, "lost", False):
        log.warning(f"batch {batch.batch_id} [{batch.partition_key}] is lost (marked in the ledger, skipped)")
    else:
        log.info(
            f"{batch.provider} batch {batch.batch_id} [{batch.partition_key}]: {progress.processing_status} "
            f"{json.dumps(dict(progress.request_counts or {}), sort_keys=True)}"
        )
    return progress


def poll_batches(ledger: Any, poll: Callable[[str], Any], batch_ids: Iterable[str], log: Any) -> None:
    """Poll those of ``batch_ids`` still in flight (the ledger records what each poll says)."""
    for batch_id in dict.fromkeys(batch_ids):
        row = ledger.get(batch_id)
        if row is not None and row.status == IN_PROGRESS:
            _poll_one(poll, row, log)


def poll_ended_batches(
    ledger: Any,
    provider: str,
    poll: Callable[[str], Any],
    log: Any,
    partition_key: str | None = None,
) -> list[EndedBatch]:
    """Poll each in-flight batch (logging its progress), then list the ended, uncollected ones.

    ``poll`` records the new status in the ledger; a batch the poll reports as ended counts even if the
    ledger has not caught up, so a collect is never skipped for lack of a status write. ``log`` is a
    logger-like object (``info``/``warning``).
    """
    ended: dict[str, EndedBatch] = {}
    for batch in ledger.in_flight(provider, partition_key):
        progress = _poll_one(poll, batch, log)
        if progress is not None and getattr(progress, "ended", False):
            ended[batch.batch_id] = EndedBatch(batch.batch_id, batch.partition_key, batch.created_at)
    for batch in ledger.ended_uncollected(provider, partition_key):
        ended.setdefault(batch.batch_id, EndedBatch(batch.batch_id, batch.partition_key, batch.created_at))
    return list(ended.values())


def newest_first(batches: Iterable[EndedBatch]) -> list[EndedBatch]:
    """``batches`` from the most recently created: the order a declared-unique load collects them in.

    A load that keeps the first row per key (``defs.unique_merge``) then keeps the row of the newest
    batch when two batches answered the same id (a text edited while its first batch was in flight).
    """
    return sorted(batches, key=lambda b: b.created_at, reverse=True)


def has_open_batches(ledger: Any, provider: str) -> bool:
    """Anything to poll or collect? (Lets an idle sensor tick skip the SDK import and all HTTP.)"""
    return bool(ledger.in_flight(provider, None) or ledger.ended_uncollected(provider, None))
