"""Poll, wait and collect: the half of :class:`ClaudeBatchHarvester` that reads batches back.

Split from ``harvester.py`` (submit) so each file has one job; the mixin uses the harvester's client,
ledger, raw folder and log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from harvest_defs.harvest.claude import settings
from harvest_defs.harvest.claude.errors import BatchLostError, ResultsArchivedError
from harvest_defs.harvest.claude.results import (
    download_results,
    parse_results,
    parse_timestamp,
    read_manifest,
)
from harvest_defs.harvest.claude.stored import StoredRowsReport, stored_rows
from harvest_defs.harvest.ledger import BatchLedger
from harvest_defs.harvest.progress import BatchProgress
from harvest_defs.harvest.storage import RawMirror

if TYPE_CHECKING:
    import anthropic

    from harvest_defs.harvest.claude.prompts import PreparedRequest

PROVIDER = settings.PROVIDER


class CollectMixin:
    """Reading batches back: needs ``client``, ``ledger``, ``raw_path``, ``poll_interval`` and ``log``."""

    ledger: BatchLedger
    mirror: RawMirror
    poll_interval: float
    log: Callable[[str], None]

    @property
    def client(self) -> anthropic.Anthropic:
        raise NotImplementedError

    def raw_path(self, batch_id: str) -> Path:
        raise NotImplementedError

    def manifest_path(self, request_set_hash: str) -> Path:
        raise NotImplementedError

    def _retrieve(self, batch_id: str) -> Any:
        """``batches.retrieve``; a 404 marks the batch lost (it will never answer again) and raises."""
        import anthropic

        try:
            return self.client.messages.batches.retrieve(batch_id)
        except anthropic.NotFoundError as exc:
            reason = f"the API answered 404 for batch {batch_id} (deleted, or another workspace/key)"
            self.ledger.mark_lost(batch_id, reason)
            raise BatchLostError(batch_id, reason) from exc

    def stored_rows(
        self, requests: Sequence[PreparedRequest] | pa.Table, report: StoredRowsReport
    ) -> Iterator[pa.Table]:
        """Rows for ``requests`` rebuilt from raw results on disk (see ``claude/stored.py``)."""
        return stored_rows(self, requests, report)

    def poll(self, batch_id: str) -> BatchProgress:
        """Retrieve once; records counts (and ``ended``) in the ledger and logs them.

        A batch the API no longer knows is marked lost and reported as such (``lost=True``), so one
        vanished batch never stalls a sensor or a blocking wait.
        """
        try:
            batch = self._retrieve(batch_id)
        except BatchLostError as exc:
            self.log(str(exc))
            return BatchProgress(batch_id, "lost", {}, ended=False, lost=True)
        counts = {
            "processing": batch.request_counts.processing,
            "succeeded": batch.request_counts.succeeded,
            "errored": batch.request_counts.errored,
            "canceled": batch.request_counts.canceled,
            "expired": batch.request_counts.expired,
        }
        ended = batch.processing_status == "ended"
        if ended:
            self.ledger.mark_ended(batch_id, counts)
            row = self.ledger.get(batch_id)
            if row is not None and batch.ended_at is not None:
                ended_at = parse_timestamp(batch.ended_at).isoformat()
                self.ledger.update_meta(
                    PROVIDER, row.request_set_hash, row.chunk_index, api_ended_at=ended_at
                )
        else:
            self.ledger.update_counts(batch_id, counts)
        self.log(
            f"claude batch {batch_id}: {batch.processing_status} "
            + " ".join(f"{name}={value}" for name, value in counts.items())
        )
        return BatchProgress(batch_id, batch.processing_status, counts, ended)

    def wait(
        self, batch_ids: Iterable[str], poll_interval: float | None = None, timeout: float | None = None
    ) -> None:
        """Block until every batch has ended, polling (and logging progress) every ``poll_interval``."""
        pending = list(dict.fromkeys(batch_ids))
        interval = self.poll_interval if poll_interval is None else poll_interval
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            progress = [self.poll(b) for b in pending]
            pending = [p.batch_id for p in progress if not (p.ended or p.lost)]
            if not pending:
                return
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"batches still processing after {timeout} s: {pending}")
            time.sleep(interval)

    def collect(self, batch_id: str, *, record: bool = True) -> Iterator[pa.Table]:
        """The batch's rows as Arrow tables; the raw JSONL is on disk before the first row is parsed.

        Outcomes go to the ledger as each table is produced (succeeded ones become cached; failed ones
        are retried by the next submit); ``record=False`` only reads (a batch collected before). Call
        :meth:`mark_collected` once the rows are loaded. A batch the API no longer knows (404) is marked
        lost in the ledger and raises :class:`BatchLostError`.
        """
        row = self.ledger.get(batch_id)
        if row is None:
            raise KeyError(f"batch {batch_id} is not in the ledger {self.ledger.path}")
        raw = self.raw_path(batch_id)
        ended_at = row.meta.get("api_ended_at")
        if not self.mirror.fetch(raw) or not ended_at:
            batch = self._retrieve(batch_id)
            if batch.processing_status != "ended":
                raise RuntimeError(f"batch {batch_id} has not ended ({batch.processing_status})")
            if batch.results_url is None:
                raise ResultsArchivedError(batch_id, str(batch.archived_at or "unknown time"))
            ended_at = parse_timestamp(batch.ended_at).isoformat()
            counts = batch.request_counts
            expected = (
                counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            )
            download_results(self.client, batch_id, raw, expected, settings.DOWNLOAD_ATTEMPTS)
            self.mirror.publish(raw)
        manifest_file = Path(row.meta["manifest"])
        if not manifest_file.exists():  # written on another node (its own HARVEST_HOME): same key here
            manifest_file = self.manifest_path(row.request_set_hash)
            self.mirror.fetch(manifest_file)
        manifest = read_manifest(manifest_file)
        model = str(row.meta.get("model", ""))
        unknown: list[str] = []
        # Ledger writes run on one background thread (in order) while dlt takes the table: SQLite and
        # dlt's parquet writer both release the GIL, so on 2 cores this hides most of the write time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="claude-outcomes") as writer:
            pending = []
            for parsed in parse_results(
                raw, manifest, batch_id, model, parse_timestamp(ended_at), on_unknown=unknown.append
            ):
                if not record:
                    yield parsed.table
                    continue
                pending.append(
                    writer.submit(self.ledger.record_outcomes, PROVIDER, parsed.outcomes, batch_id)
                )
                yield parsed.table
            for future in pending:
                future.result()  # surface a failed write before the caller marks the batch collected
        if unknown:
            self.log(f"claude batch {batch_id}: {len(unknown)} results with unknown custom_id: {unknown[:3]}")

    def mark_collected(self, batch_id: str) -> None:
        self.ledger.mark_collected(batch_id)
