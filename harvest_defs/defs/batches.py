"""Polling the ledger's in-flight batches: shared by the sensors and by the collecting assets.

The sensor uses it to decide which partitions to collect; a collecting asset launched by hand (without the
sensor) uses it to find what is ready itself, so both paths agree on what "ended" means.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EndedBatch:
    batch_id: str
    partition_key: str | None


def poll_ended_batches(
    ledger: Any,
    provider: str,
    poll: Callable[[str], Any],
    log: Callable[[str], None],
    partition_key: str | None = None,
) -> list[EndedBatch]:
    """Poll each in-flight batch (logging its progress), then list the ended, uncollected ones.

    ``poll`` records the new status in the ledger; a batch the poll reports as ended counts even if the
    ledger has not caught up, so a collect is never skipped for lack of a status write.
    """
    ended: dict[str, EndedBatch] = {}
    for batch in ledger.in_flight(provider, partition_key):
        progress = poll(batch.batch_id)
        log(
            f"{provider} batch {batch.batch_id} [{batch.partition_key}]: {progress.processing_status} "
            f"{json.dumps(dict(progress.request_counts or {}), sort_keys=True)}"
        )
        if getattr(progress, "ended", False):
            ended[batch.batch_id] = EndedBatch(batch.batch_id, batch.partition_key)
    for batch in ledger.ended_uncollected(provider, partition_key):
        ended.setdefault(batch.batch_id, EndedBatch(batch.batch_id, batch.partition_key))
    return list(ended.values())


def has_open_batches(ledger: Any, provider: str) -> bool:
    """Anything to poll or collect? (Lets an idle sensor tick skip the SDK import and all HTTP.)"""
    return bool(ledger.in_flight(provider, None) or ledger.ended_uncollected(provider, None))
