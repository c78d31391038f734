"""Message Batches in memory: compact per-request columns, the lifecycle, and lazily generated results.

Sized for benchmarks that push 100,000–250,000 requests through: a batch keeps per-request columns (the
custom_id, an interned model name, the generated answer text, token counts in ``array``s, one outcome
byte) instead of a dict per request, and the results JSONL is produced line by line at download time.
The answer text is computed once at create (it replaces the prompt, which is longer), so the batch's
billed output tokens are known when it ends and every download returns identical bytes.

Lifecycle (``advance``): ``in_progress`` until ``batch_processing_seconds`` after ``created_at`` (read from
the live config, 0 = ended at the next look), then ``ended``; a cancel moves it to ``canceling`` and the
next look ends it, requests not yet processed at the cancel time becoming ``canceled``. Per-request
``errored`` / ``expired`` outcomes are drawn with the state's seeded RNG when the batch ends, and billing
(input/output tokens of succeeded requests) is counted once, then.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # C-accelerated, same as ensure_ascii=False
from typing import Any

from harvest_defs.emulator.anthropic_wire import rfc3339
from harvest_defs.emulator.config import EmulatorConfig
from harvest_defs.emulator.state import EmulatorState

SUCCEEDED, ERRORED, EXPIRED, CANCELED, INJECTED_ERROR = 0, 1, 2, 3, 4
OUTCOME_TYPES = ("succeeded", "errored", "expired", "canceled", "errored")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")
EXPIRY_SECONDS = 24 * 3600.0
INJECTED_ERROR_MESSAGE = "Internal server error while processing this request."
_LINES_PER_CHUNK = 1000


FAULT_PREFIX = "emulator fault injection"


class _QuietInjectedFaults(logging.Filter):
    """Drops uvicorn's traceback for connections the emulator aborts on purpose (they are not bugs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConnectionAbortedError) and str(exc).startswith(FAULT_PREFIX))


def quiet_injected_faults() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietInjectedFaults) for f in logger.filters):
        logger.addFilter(_QuietInjectedFaults())


@dataclass(eq=False)
class StoredBatch:
    id: str
    seq: int
    created_at: float
    custom_ids: list[str]
    models: list[str]
    texts: list[str]  # the generated answer ("" for requests that will be errored)
    max_tokens_stop: bytearray  # 1 where the answer hit max_tokens
    input_tokens: array[int]
    output_tokens: array[int]
    invalid: dict[int, tuple[str, str]]  # index -> (error type, message): errored at processing time
    # index -> the whole Message (without id) for answers beyond one plain text block (thinking, tool_use,
    # stop sequences, prompt-cache usage); sparse, so plain 100k-request batches stay compact.
    rich: dict[int, dict[str, Any]] = field(default_factory=dict)
    processing_status: str = "in_progress"
    cancel_initiated_at: float | None = None
    processed_at_cancel: int | None = None
    ended_at: float | None = None
    outcomes: bytearray | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.custom_ids)


def _archived_at(batch: StoredBatch, config: EmulatorConfig) -> float | None:
    if batch.ended_at is None or config.results_archive_seconds is None:
        return None
    return batch.ended_at + config.results_archive_seconds


def is_archived(batch: StoredBatch, now: float, config: EmulatorConfig) -> bool:
    archived_at = _archived_at(batch, config)
    return archived_at is not None and now >= archived_at


def _end(batch: StoredBatch, processed: int, ended_at: float, state: EmulatorState) -> None:
    """Decide every request's outcome, fix the counts, bill the succeeded requests (once)."""
    cfg = state.config
    n = batch.size
    outcomes = bytearray(n)
    if processed < n:
        outcomes[processed:] = bytes([CANCELED]) * (n - processed)
    expired_rate = cfg.batch_expired_rate
    # Conditional rate so that, overall, about batch_errored_rate of the requests end errored.
    errored_rate = cfg.batch_errored_rate / (1.0 - expired_rate) if expired_rate < 1.0 else 0.0
    invalid = batch.invalid
    for i in range(processed):
        if i in invalid:
            outcomes[i] = ERRORED
        elif state.chance(expired_rate):
            outcomes[i] = EXPIRED
        elif state.chance(errored_rate):
            outcomes[i] = INJECTED_ERROR
    tally = [0] * len(OUTCOME_TYPES)
    for code in range(len(OUTCOME_TYPES)):
        tally[code] = outcomes.count(code)
    counts = {name: 0 for name in RESULT_TYPES}
    for code, k in enumerate(tally):
        counts[OUTCOME_TYPES[code]] += k
    input_billed = output_billed = cache_written = cache_read = 0
    if tally[SUCCEEDED]:
        for i in range(processed):
            if outcomes[i] == SUCCEEDED:
                input_billed += batch.input_tokens[i]
                output_billed += batch.output_tokens[i]
        for i, message in batch.rich.items():
            if i < processed and outcomes[i] == SUCCEEDED:
                cache_written += message["usage"]["cache_creation_input_tokens"]
                cache_read += message["usage"]["cache_read_input_tokens"]
    batch.outcomes = outcomes
    batch.counts = counts
    batch.ended_at = ended_at
    batch.processing_status = "ended"
    state.count("anthropic_input_tokens", input_billed)
    state.count("anthropic_output_tokens", output_billed)
    if cache_written or cache_read:
        state.count("anthropic_cache_creation_input_tokens", cache_written)
        state.count("anthropic_cache_read_input_tokens", cache_read)
    for name, k in counts.items():
        if k:
            state.count(f"anthropic_batch_{name}", k)


def advance(batch: StoredBatch, now: float, state: EmulatorState) -> None:
    """Bring the batch up to date with the clock (call under the store lock)."""
    if batch.processing_status == "in_progress":
        due = batch.created_at + max(0.0, state.config.batch_processing_seconds)
        if now >= due:
            _end(batch, batch.size, min(now, due), state)
    elif batch.processing_status == "canceling":
        processed = batch.processed_at_cancel if batch.processed_at_cancel is not None else 0
        _end(batch, processed, now, state)


def cancel(batch: StoredBatch, now: float, state: EmulatorState) -> None:
    """Start canceling; the share of requests processed so far is kept, the rest will be canceled."""
    if batch.processing_status != "in_progress":
        return
    seconds = state.config.batch_processing_seconds
    done = 1.0 if seconds <= 0 else min(1.0, max(0.0, (now - batch.created_at) / seconds))
    batch.processed_at_cancel = math.floor(batch.size * done)
    batch.cancel_initiated_at = now
    batch.processing_status = "canceling"


def batch_json(batch: StoredBatch, base_url: str, now: float, config: EmulatorConfig) -> dict[str, Any]:
    """The MessageBatch object; ``results_url`` is absolute, as the real API returns it."""
    ended = batch.processing_status == "ended"
    archived = ended and is_archived(batch, now, config)
    if ended:
        counts = {"processing": 0, **batch.counts}
    else:
        counts = {"processing": batch.size, **{name: 0 for name in RESULT_TYPES}}
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.processing_status,
        "request_counts": counts,
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.created_at + EXPIRY_SECONDS),
        "ended_at": rfc3339(batch.ended_at),
        "archived_at": rfc3339(_archived_at(batch, config)) if archived else None,
        "cancel_initiated_at": rfc3339(batch.cancel_initiated_at),
        "results_url": (
            f"{base_url}v1/messages/batches/{batch.id}/results" if ended and not archived else None
        ),
    }


# A succeeded line is formatted from a template: json.dumps of a nested dict per line was the download's
# bottleneck (~60k lines/s); this is several times faster and yields the same JSON (a test compares them).
_SUCCEEDED_LINE = (
    '{"custom_id":%s,"result":{"type":"succeeded","message":{"id":"%s","type":"message",'
    '"role":"assistant","model":%s,"content":[{"type":"text","text":%s}],"stop_reason":"%s",'
    '"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":0,'
    '"cache_read_input_tokens":0,"service_tier":"batch"}}}}\n'
)


def message_id(batch: StoredBatch, i: int) -> str:
    """Stable per (batch, request): the same ids on every download, unique across batches."""
    return f"msg_01{batch.id[-12:]}{i:010d}"


def _other_result(batch: StoredBatch, i: int, code: int) -> dict[str, Any]:
    if code in (ERRORED, INJECTED_ERROR):
        error_type, message_text = batch.invalid.get(i, ("api_error", INJECTED_ERROR_MESSAGE))
        return {
            "type": "errored",
            "error": {"type": "error", "error": {"type": error_type, "message": message_text}},
        }
    return {"type": OUTCOME_TYPES[code]}


def result_line(batch: StoredBatch, i: int) -> str:
    """One JSONL line (with its newline) of an ended batch."""
    assert batch.outcomes is not None, "results exist only once the batch has ended"
    code = batch.outcomes[i]
    if code == SUCCEEDED and i in batch.rich:
        message = {"id": message_id(batch, i), **batch.rich[i]}
        rich_line = {"custom_id": batch.custom_ids[i], "result": {"type": "succeeded", "message": message}}
        return json.dumps(rich_line, separators=(",", ":"), ensure_ascii=False) + "\n"
    if code == SUCCEEDED:
        return _SUCCEEDED_LINE % (
            _quote(batch.custom_ids[i]),
            message_id(batch, i),
            _quote(batch.models[i]),
            _quote(batch.texts[i]),
            "max_tokens" if batch.max_tokens_stop[i] else "end_turn",
            batch.input_tokens[i],
            batch.output_tokens[i],
        )
    line = {"custom_id": batch.custom_ids[i], "result": _other_result(batch, i, code)}
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"


def iter_results(batch: StoredBatch, cut_at_line: int | None = None) -> Iterator[bytes]:
    """JSONL chunks generated on the fly; with ``cut_at_line`` the stream stops halfway through that line.

    The cut is raised as an error after the partial line is sent, so the server aborts the connection
    mid-body: the client sees a dropped download (as from a real network cut), not a clean end.
    """
    n = batch.size
    for start in range(0, n, _LINES_PER_CHUNK):
        stop = min(n, start + _LINES_PER_CHUNK)
        if cut_at_line is not None and start <= cut_at_line < stop:
            head = "".join(result_line(batch, i) for i in range(start, cut_at_line)).encode("utf-8")
            line = result_line(batch, cut_at_line).encode("utf-8")
            yield head + line[: max(1, len(line) // 2)]
            raise ConnectionAbortedError(f"{FAULT_PREFIX}: results stream cut mid-line")
        yield "".join([result_line(batch, i) for i in range(start, stop)]).encode("utf-8")


class BatchStore:
    """Batches by id, newest last; cursors stay valid after a batch is deleted."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.batches: dict[str, StoredBatch] = {}
        self.seq_of: dict[str, int] = {}
        self._next_seq = 0

    def clear(self) -> None:
        with self.lock:
            self.batches.clear()
            self.seq_of.clear()

    def next_seq(self) -> int:
        with self.lock:
            self._next_seq += 1
            return self._next_seq

    def add(self, batch: StoredBatch) -> None:
        with self.lock:
            self.batches[batch.id] = batch
            self.seq_of[batch.id] = batch.seq

    def newest_first(self) -> list[StoredBatch]:
        with self.lock:
            return sorted(self.batches.values(), key=lambda b: b.seq, reverse=True)

    def page(
        self, limit: int, after_id: str | None, before_id: str | None
    ) -> tuple[list[StoredBatch], bool] | None:
        """One list page (newest first) and ``has_more``; None when a cursor id was never issued."""
        with self.lock:
            ordered = self.newest_first()
            if after_id is not None:
                cursor = self.seq_of.get(after_id)
                if cursor is None:
                    return None
                older = [b for b in ordered if b.seq < cursor]
                return older[:limit], len(older) > limit
            if before_id is not None:
                cursor = self.seq_of.get(before_id)
                if cursor is None:
                    return None
                newer = [b for b in ordered if b.seq > cursor]
                return newer[-limit:], len(newer) > limit
            return ordered[:limit], len(ordered) > limit
