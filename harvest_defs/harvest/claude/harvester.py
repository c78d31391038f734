"""ClaudeBatchHarvester: submit / poll / collect Message Batches without ever paying twice.

Non-blocking by design (the Dagster layer submits in one run and collects in another, hours later, maybe
in another process); the blocking dlt resource is built from the same three calls plus :meth:`wait`.

Submit protocol (see ``harvest/ledger.py``): validate -> request hashes -> skip hashes the ledger knows as
succeeded (cached) or submitted (in flight: resumed) -> sort the rest by hash and split greedily by count
and bytes -> per chunk: write its manifest, reserve the ledger slot, then either resume the batch the
ledger already has, reconcile a slot left by a crash with the server's batch list, or create the batch;
record its id the moment the API answers, then the requests.

Why sort by hash and key the ledger slot by the chunk's own content: a re-run after a crash half way
through submitting recomputes exactly the same remaining chunks (greedy splitting of a suffix is stable),
so each finds its own ledger row instead of creating a second batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.harvest.backends import open_ledger
from harvest_defs.harvest.claude import settings
from harvest_defs.harvest.claude.client import make_client, resolve_api_key, resolve_base_url
from harvest_defs.harvest.claude.collect import CollectMixin
from harvest_defs.harvest.claude.errors import BatchLostError, ResultsArchivedError
from harvest_defs.harvest.claude.prompts import (
    InvalidPrompt,
    PreparedPrompts,
    PreparedRequest,
    invalid_prompts_message,
    prepare_prompts,
)
from harvest_defs.harvest.claude.results import (
    parse_timestamp,
    read_manifest,
    write_manifest,
)
from harvest_defs.harvest.claude.stream import DEFAULT_WINDOW, StreamTotals, prepare_windows
from harvest_defs.harvest.hashing import set_hash
from harvest_defs.harvest.ledger import (
    COLLECTED,
    LOST,
    LOST_REQUEST,
    SUBMITTED,
    SUCCEEDED,
    BatchLedger,
    LedgerBatch,
)
from harvest_defs.harvest.storage import raw_mirror

if TYPE_CHECKING:
    import anthropic

PROVIDER = settings.PROVIDER
__all__ = ["BatchLostError", "ClaudeBatchHarvester", "ResultsArchivedError", "SubmitReport"]


@dataclass(frozen=True)
class SubmitReport:
    """What a submit did. ``batch_ids``: every uncollected batch holding this prompt set's requests."""

    batch_ids: list[str]
    requests_sent: int
    requests_cached: int
    requests_resumed: int
    invalid: list[InvalidPrompt]
    # Upper bound at batch prices: input tokens as billed, output at every request's full max_tokens.
    estimated_cost_usd: float
    duplicates_merged: int = 0
    new_batch_ids: list[str] = field(default_factory=list)
    # Requests whose batch is lost (404 / results archived): not sent again until rearmed on purpose.
    requests_lost: int = 0
    # Streaming: prompts whose custom_id an earlier window already used (no row, logged).
    duplicates_skipped: int = 0
    # The estimate's parts for the requests sent now: input tokens (as the API counts them, before any
    # prompt-cache split) and the output upper bound (sum of max_tokens).
    estimated_input_tokens: int = 0
    max_output_tokens: int = 0


def split_requests(
    requests: Sequence[PreparedRequest], max_requests: int, max_bytes: int
) -> list[list[PreparedRequest]]:
    """Greedy split under both limits, bytes measured as the JSON actually sent (O(n))."""
    chunks: list[list[PreparedRequest]] = []
    current: list[PreparedRequest] = []
    size = settings.BATCH_ENVELOPE_BYTES
    for request in requests:
        cost = len(request.body) + 1  # the comma between requests
        if current and (len(current) >= max_requests or size + cost > max_bytes):
            chunks.append(current)
            current, size = [], settings.BATCH_ENVELOPE_BYTES
        current.append(request)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def estimate_tokens(requests: Iterable[PreparedRequest], system_chars: int = 0) -> tuple[int, int]:
    """(input, max output) tokens: input as the API counts it, output bounded by each max_tokens.

    Input uses :func:`harvest_defs.harvest.tokens.count_input_tokens` on the very body sent (system,
    messages), the rule the emulator bills with, so offline the input side is exact. The output side is
    the upper bound (every request uses its whole ``max_tokens``): the cost estimate is what a run can
    cost at most, not what it will. ``system_chars`` is unused (the system prompt is in each body); kept
    for callers of the old signature.
    """
    import orjson

    from harvest_defs.harvest.tokens import count_input_tokens

    tokens = 0
    out = 0
    for request in requests:
        tokens += count_input_tokens(orjson.loads(request.body)["params"])
        out += request.max_tokens
    return tokens, out


class ClaudeBatchHarvester(CollectMixin):
    """Submit, poll and collect Message Batches, sharing one ledger with every other process."""

    # A slot another process reserved this recently may still be getting its batch id: wait for it
    # before looking for an orphaned batch on the server.
    race_wait_seconds: float = 30.0

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        ledger_path: Path | str | BatchLedger,
        raw_dir: Path | str,
        max_requests_per_batch: int = settings.MAX_REQUESTS_PER_BATCH,
        max_bytes_per_batch: int = settings.MAX_BYTES_PER_BATCH,
        poll_interval: float = settings.DEFAULT_POLL_INTERVAL,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._api_key = api_key  # resolved lazily: validation and ledger reads need no key
        self.base_url = resolve_base_url(base_url)
        self.ledger = open_ledger(ledger_path)  # a path, or a ledger a backend opened
        self.raw_dir = Path(raw_dir) / PROVIDER
        self.mirror = raw_mirror(raw_dir)  # object storage (HARVEST_STORAGE_URL) for other nodes, or none
        self.max_requests_per_batch = max_requests_per_batch
        self.max_bytes_per_batch = max_bytes_per_batch
        self.poll_interval = poll_interval
        self.log: Callable[[str], None] = log or _default_log
        self._client: anthropic.Anthropic | None = None

    def __repr__(self) -> str:  # never the key
        return f"ClaudeBatchHarvester(base_url={self.base_url!r}, ledger={str(self.ledger.path)!r})"

    @property
    def client(self) -> anthropic.Anthropic:
        if self._client is None:
            self._client = make_client(resolve_api_key(self._api_key), self.base_url)
        return self._client

    # --- paths ---------------------------------------------------------------------------------------
    def manifest_path(self, request_set_hash: str) -> Path:
        return self.raw_dir / "requests" / f"{request_set_hash}.parquet"

    def raw_path(self, batch_id: str) -> Path:
        return self.raw_dir / f"{batch_id}.jsonl"

    # --- submit --------------------------------------------------------------------------------------
    def prepare(
        self,
        prompts: Sequence[Mapping[str, Any] | str],
        model: str,
        max_tokens: int = settings.DEFAULT_MAX_TOKENS,
        system_prompt: str | None = None,
        temperature: float | None = None,
        *,
        output_config: Mapping[str, Any] | None = None,
        cache_system: bool = False,
    ) -> PreparedPrompts:
        """Validate and build every request (no HTTP); logs one message naming every bad prompt."""
        prepared = prepare_prompts(
            prompts,
            model,
            max_tokens,
            system_prompt,
            temperature,
            self.max_bytes_per_batch,
            output_config=output_config,
            cache_system=cache_system,
        )
        if prepared.invalid:
            self.log(invalid_prompts_message(prepared.invalid))
        self._warn_unknown_model(model)
        return prepared

    def submit(
        self,
        prompts: Any,
        model: str,
        max_tokens: int = settings.DEFAULT_MAX_TOKENS,
        system_prompt: str | None = None,
        temperature: float | None = None,
        partition_key: str | None = None,
        *,
        window: int = DEFAULT_WINDOW,
    ) -> SubmitReport:
        """Send every request not yet succeeded or in flight; returns at once (no waiting for results).

        ``prompts``: a list, any iterable (a generator), a pyarrow Table/RecordBatchReader, a Polars
        DataFrame/LazyFrame or a Parquet path, read ``window`` prompts at a time (``claude/stream.py``):
        memory is bounded by the window, and a re-run after a crash rebuilds the same windows.
        """
        self._warn_unknown_model(model)
        totals = StreamTotals(self.log)
        for prepared in prepare_windows(
            prompts,
            model,
            max_tokens,
            system_prompt,
            temperature,
            self.max_bytes_per_batch,
            window=window,
            scratch_dir=self.raw_dir / "scratch",
        ):
            totals.add_prepared(prepared, prepared.rows)
            totals.add_report(
                self.submit_prepared(prepared, partition_key=partition_key, system_prompt=system_prompt)
            )
            totals.progress()
        return totals.report()

    def _warn_unknown_model(self, model: str) -> None:
        from harvest_defs.harvest.pricing import claude_model_known

        if not claude_model_known(model):
            self.log(f"model {model!r} is not in the price table: cost estimate 0; the API decides validity")

    def submit_prepared(
        self,
        prepared: PreparedPrompts,
        partition_key: str | None = None,
        system_prompt: str | None = None,
    ) -> SubmitReport:
        requests = prepared.requests
        locations = self.ledger.request_locations(PROVIDER, (r.request_hash for r in requests))
        states = {h: loc[0] for h, loc in locations.items()}
        to_send: list[PreparedRequest] = []
        unique: set[str] = set()
        cached = resumed = lost = 0
        for r in requests:
            state = states.get(r.request_hash)
            if state == SUCCEEDED or (state not in (SUBMITTED, LOST_REQUEST) and r.request_hash in unique):
                cached += 1  # a result exists, or the same content is already going out in this submit
            elif state == SUBMITTED:
                resumed += 1
            elif state == LOST_REQUEST:
                lost += 1
            else:
                unique.add(r.request_hash)
                to_send.append(r)
        if lost:
            self.log(
                f"claude submit: {lost} requests belong to lost batches (see `harvest status`); "
                "not sent again until rearmed (`harvest resubmit`)"
            )
        to_send.sort(key=lambda r: r.request_hash)
        new_ids: list[str] = []
        resumed_ids: list[str] = []
        paid: list[PreparedRequest] = []
        for chunk in split_requests(to_send, self.max_requests_per_batch, self.max_bytes_per_batch):
            batch_id, created = self._submit_chunk(chunk, prepared.model, partition_key)
            if created:
                new_ids.append(batch_id)
                paid.extend(chunk)
            else:
                resumed_ids.append(batch_id)
                resumed += len(chunk)
        sent = len(paid)
        in_tokens, out_tokens = estimate_tokens(paid)
        from harvest_defs.harvest.pricing import estimate_batch_usd

        cost = estimate_batch_usd(prepared.model, in_tokens, out_tokens) if paid else 0.0
        holding = self._holding_batches(locations)
        batch_ids = list(dict.fromkeys([*holding, *resumed_ids, *new_ids]))
        report = SubmitReport(
            batch_ids=batch_ids,
            requests_sent=sent,
            requests_cached=cached,
            requests_resumed=resumed,
            invalid=list(prepared.invalid),
            estimated_cost_usd=cost,
            duplicates_merged=prepared.duplicates_merged,
            new_batch_ids=new_ids,
            requests_lost=lost,
            estimated_input_tokens=in_tokens,
            max_output_tokens=out_tokens,
        )
        self.log(
            f"claude submit: {sent} requests sent in {len(new_ids)} new batch(es), {cached} cached, "
            f"{resumed} resumed, {len(prepared.invalid)} invalid; est. <= ${cost:.4f} at batch prices"
        )
        return report

    def _submit_chunk(
        self, chunk: list[PreparedRequest], model: str, partition_key: str | None
    ) -> tuple[str, bool]:
        """(batch_id, created_now) for one chunk, resuming or adopting a batch whenever one exists."""
        chunk_hash = set_hash((r.request_hash for r in chunk), provider=PROVIDER)
        manifest = self.manifest_path(chunk_hash)
        write_manifest(manifest, chunk)
        self.mirror.publish(manifest)  # before the create: a collect run on another node will need it
        meta = {"model": model, "manifest": str(manifest)}
        attempt = 0
        while True:
            # chunk_index counts attempts of the same request set: a collected attempt whose requests
            # all failed, or a lost one being resubmitted, is retried as the next one, never by
            # re-opening the old slot.
            row = self.ledger.reserve(PROVIDER, chunk_hash, attempt, len(chunk), partition_key, meta)
            if row.status not in (COLLECTED, LOST):
                break
            attempt += 1
        if row.batch_id:
            self.ledger.record_requests(
                PROVIDER, row.batch_id, ((r.request_hash, r.custom_id) for r in chunk)
            )
            self.log(f"claude chunk {chunk_hash[:12]}: resuming batch {row.batch_id}")
            return row.batch_id, False
        if not row.fresh:
            adopted = self._reconcile(row)
            if adopted is not None:
                self.ledger.record_created(PROVIDER, chunk_hash, attempt, adopted)
                self.ledger.record_requests(PROVIDER, adopted, ((r.request_hash, r.custom_id) for r in chunk))
                self.log(f"claude chunk {chunk_hash[:12]}: adopted batch {adopted} left by a crash")
                return adopted, False
        batch_id = self._create(chunk, chunk_hash, attempt)
        self.ledger.record_created(PROVIDER, chunk_hash, attempt, batch_id)
        self.ledger.record_requests(PROVIDER, batch_id, ((r.request_hash, r.custom_id) for r in chunk))
        return batch_id, True

    def _create(self, chunk: list[PreparedRequest], chunk_hash: str, attempt: int) -> str:
        """POST the exact bytes we measured (the SDK still retries 429/5xx with its backoff)."""
        import anthropic
        from anthropic.types.messages import MessageBatch

        body = b'{"requests":[' + b",".join(r.body for r in chunk) + b"]}"
        try:
            batch = self.client.post(
                "/v1/messages/batches",
                content=body,
                cast_to=MessageBatch,
                options={"headers": {"Content-Type": "application/json"}},
            )
        except anthropic.APIStatusError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                self.ledger.abandon(PROVIDER, chunk_hash, attempt)  # rejected: nothing was created
            raise
        return batch.id

    def _reconcile(self, row: LedgerBatch) -> str | None:
        """A slot without a batch id that is not ours: another process is creating it, or one crashed.

        Wait briefly for a racing creator to record its id; then look for a batch created since the slot
        was reserved with the same request count that no ledger row claims, and adopt it.
        """
        deadline = row.created_at + self.race_wait_seconds
        while time.time() < deadline:
            current = self.ledger.find(PROVIDER, row.request_set_hash, row.chunk_index)
            if current is not None and current.batch_id:
                return current.batch_id
            time.sleep(0.5)
        since = row.created_at - 5.0  # allow for clock skew between us and the API
        for batch in self.client.messages.batches.list(limit=100):
            created = parse_timestamp(batch.created_at).timestamp()
            if created < since:
                break  # newest first: everything further is older than the reservation
            counts = batch.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if total == row.request_count and self.ledger.get(batch.id) is None:
                return batch.id
        return None

    def _holding_batches(self, locations: Mapping[str, tuple[str, str, str]]) -> list[str]:
        """Uncollected batches holding in-flight requests, from the ledger's request rows.

        Why not :meth:`open_batches_for`: that reads every manifest in the ledger, once per submit; a
        stream submits once per window, so at 10M prompts it read 200 manifests 200 times.
        """
        found: dict[str, None] = {}
        for state, batch_id, _ in locations.values():
            if state == SUBMITTED and batch_id and batch_id not in found:
                row = self.ledger.get(batch_id)
                if row is not None and row.status not in (COLLECTED, LOST):
                    found[batch_id] = None
        return list(found)

    def open_batches_for(self, request_hashes: set[str], include_collected: bool = False) -> list[str]:
        """Ledger batches (uncollected, or any) whose manifest holds one of ``request_hashes``."""
        if not request_hashes:
            return []
        found: list[str] = []
        for batch in self.ledger.batches(PROVIDER):
            if not batch.batch_id or (batch.status == COLLECTED and not include_collected):
                continue
            path = batch.meta.get("manifest")
            if not path or not Path(path).exists():
                continue
            hashes = read_manifest(Path(path), ["request_hash"]).column("request_hash").to_pylist()
            if not request_hashes.isdisjoint(hashes):
                found.append(batch.batch_id)
        return found


def _default_log(message: str) -> None:
    import logging

    logging.getLogger("harvest_defs.claude").info(message)


def now_utc() -> datetime:
    return datetime.now(UTC)
