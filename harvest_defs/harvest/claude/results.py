"""Results: the fixed Arrow schema, the raw JSONL download, and the streaming O(n) parse.

Why raw first: results are downloadable for 29 days, the batch was paid for once; a parser bug or a
crash during the load must never force a re-download after that window (or a re-payment). So the JSONL
is streamed to ``raw_dir/claude/<batch_id>.jsonl`` (written as ``.part`` and renamed only when complete
and verified), and parsing always reads that file, line by line.

Why Arrow with one schema: dlt's arrow fast path imports the parquet as-is only when every table has the
same columns, order, types and nullability (measured ~23x faster than dict rows). Prompts are joined back
through a dict custom_id -> manifest row and ``take`` (O(n)), never by scanning the prompt list.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from harvest_defs.harvest.claude.prompts import InvalidPrompt, PreparedRequest
from harvest_defs.harvest.claude.settings import ARROW_CHUNK_ROWS
from harvest_defs.harvest.progress import download_atomically

if TYPE_CHECKING:
    import anthropic

TIMESTAMP = pa.timestamp("us", tz="UTC")

# The seed guide's columns first (same names and meaning), then what users need to act on failures.
CLAUDE_MESSAGES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        pa.field("custom_id", pa.string(), nullable=False),  # the merge key: dlt makes it NOT NULL
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("model", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("created_at", TIMESTAMP),
        ("processing_time_ms", pa.float64()),
        ("success", pa.bool_()),
        ("error", pa.string()),
        ("error_type", pa.string()),
        ("request_hash", pa.string()),
        ("stop_reason", pa.string()),
        ("cache_creation_input_tokens", pa.int64()),
        ("cache_read_input_tokens", pa.int64()),
        ("result_type", pa.string()),
    ]
)

MANIFEST_SCHEMA = pa.schema(
    [("custom_id", pa.string()), ("request_hash", pa.string()), ("prompt", pa.string())]
)

EXPIRED_MESSAGE = "The batch ended (24 h window) before this request was processed; a re-run sends it again."
CANCELED_MESSAGE = "The batch was canceled before this request was processed; a re-run sends it again."
INVALID_TYPE = "invalid_request"


class IncompleteResultsError(RuntimeError):
    """The results download ended early (dropped/truncated stream); retried, then raised."""


@dataclass(frozen=True)
class ParsedChunk:
    table: pa.Table
    outcomes: list[tuple[str, bool]]  # (request_hash, success) for the ledger's cache


# --- manifests: what we sent, so any later process can map results back -------------------------------
def write_manifest(path: Path, requests: Sequence[PreparedRequest]) -> None:
    """The chunk's custom_id -> (request_hash, prompt) as parquet, written atomically (idempotent)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "custom_id": [r.custom_id for r in requests],
            "request_hash": [r.request_hash for r in requests],
            "prompt": [r.text for r in requests],
        },
        schema=MANIFEST_SCHEMA,
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_manifest(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=list(columns) if columns else None)


# --- download ------------------------------------------------------------------------------------------
def download_results(
    client: anthropic.Anthropic, batch_id: str, raw_path: Path, expected_lines: int, attempts: int
) -> Path:
    """Stream the batch's results JSONL to ``raw_path`` (reused when it already exists).

    The SDK retries the HTTP calls themselves; a stream cut mid-body (connection drop, truncation) is
    retried here with tenacity, and a file is kept only when it holds ``expected_lines`` complete lines.
    """
    if raw_path.exists():
        return raw_path
    import anthropic as sdk

    def fetch(tmp: Path) -> None:
        counter = LineCounter()  # counts the very bytes written: no second read of the file
        with (
            client.messages.batches.with_streaming_response.results(batch_id) as response,
            open(tmp, "wb") as fh,
        ):
            for chunk in response.iter_bytes(1 << 20):
                fh.write(chunk)
                counter.feed(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        lines = counter.complete_lines()
        if lines != expected_lines:
            raise IncompleteResultsError(
                f"results of {batch_id}: {lines} complete lines, expected {expected_lines}"
            )

    return download_atomically(raw_path, fetch, (IncompleteResultsError, sdk.APIConnectionError), attempts)


class LineCounter:
    """Complete JSONL lines in a byte stream fed in pieces (a download, or a file read in blocks)."""

    def __init__(self) -> None:
        self.lines = 0
        self._tail = b""  # bytes after the last newline

    def feed(self, block: bytes) -> None:
        newlines = block.count(b"\n")
        if newlines:
            self.lines += newlines
            self._tail = block[block.rindex(b"\n") + 1 :]
        else:
            self._tail += block

    def complete_lines(self) -> int:
        """Newline-terminated lines, plus a final unterminated line only if it is whole JSON."""
        if self._tail.strip():
            try:
                orjson.loads(self._tail)
                return self.lines + 1
            except orjson.JSONDecodeError:
                pass
        return self.lines


def complete_lines(path: Path) -> int:
    """Newline-terminated lines, plus a final unterminated line only if it is whole JSON.

    A stream cut mid-line leaves an unterminated fragment (not counted); one cut at a line boundary
    leaves fewer lines. Either way the count differs from the batch's request total.
    """
    counter = LineCounter()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            counter.feed(block)
    return counter.complete_lines()


# --- parsing -------------------------------------------------------------------------------------------
def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or []
    if len(content) == 1:
        return content[0].get("text") or ""
    return "".join(block.get("text") or "" for block in content if block.get("type") == "text")


_RESULT_SCHEMA = pa.schema(
    [
        ("custom_id", pa.string()),
        (
            "result",
            pa.struct(
                [
                    ("type", pa.string()),
                    (
                        "message",
                        pa.struct(
                            [
                                ("model", pa.string()),
                                ("stop_reason", pa.string()),
                                (
                                    "content",
                                    pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())])),
                                ),
                                (
                                    "usage",
                                    pa.struct(
                                        [
                                            ("input_tokens", pa.int64()),
                                            ("output_tokens", pa.int64()),
                                            ("cache_creation_input_tokens", pa.int64()),
                                            ("cache_read_input_tokens", pa.int64()),
                                        ]
                                    ),
                                ),
                            ]
                        ),
                    ),
                    (
                        "error",
                        pa.struct(
                            [
                                ("type", pa.string()),
                                ("message", pa.string()),
                                ("error", pa.struct([("type", pa.string()), ("message", pa.string())])),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ]
)


def parse_results(
    raw_path: Path,
    manifest: pa.Table,
    batch_id: str,
    model: str,
    created_at: datetime,
    chunk_rows: int = ARROW_CHUNK_ROWS,
    on_unknown: Callable[[str], None] | None = None,
) -> Iterator[ParsedChunk]:
    """Rows of ``raw_path`` as Arrow tables of about ``chunk_rows``: streaming, O(n), vectorized.

    pyarrow's JSON reader (C++, multi-threaded) reads the file in blocks against an explicit schema; the
    columns are then derived with compute kernels and prompts are joined with ``index_in`` (a hash join
    on custom_id). A block whose shape the kernels do not cover (several content blocks in a message)
    goes through the same per-row code as :func:`parse_results_lines`; a file pyarrow cannot read at all
    is parsed by that function entirely.
    """
    import pyarrow.json as pj

    try:
        reader = pj.open_json(
            raw_path,
            read_options=pj.ReadOptions(block_size=8 << 20),
            parse_options=pj.ParseOptions(explicit_schema=_RESULT_SCHEMA, unexpected_field_behavior="ignore"),
        )
        first = reader.read_next_batch()
    except StopIteration:
        return
    except pa.ArrowInvalid:
        yield from parse_results_lines(
            raw_path, manifest, batch_id, model, created_at, chunk_rows, on_unknown
        )
        return
    ids = manifest.column("custom_id").combine_chunks()
    hashes = manifest.column("request_hash").combine_chunks()
    prompts = manifest.column("prompt").combine_chunks()
    batch: pa.RecordBatch | None = first
    while batch is not None:
        for start in range(0, batch.num_rows, chunk_rows):
            yield _vector_chunk(
                batch.slice(start, chunk_rows), ids, hashes, prompts, batch_id, model, created_at, on_unknown
            )
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            batch = None


def _vector_chunk(
    rb: pa.RecordBatch,
    ids: pa.Array,
    hashes: pa.Array,
    prompts: pa.Array,
    batch_id: str,
    model: str,
    created_at: datetime,
    on_unknown: Callable[[str], None] | None,
) -> ParsedChunk:
    import pyarrow.compute as pc

    n = rb.num_rows
    custom_id = rb.column("custom_id")
    positions = pc.index_in(custom_id, value_set=ids)
    if on_unknown is not None and positions.null_count:
        for cid in custom_id.filter(pc.is_null(positions)).to_pylist():
            on_unknown(cid)
    request_hash = hashes.take(positions)
    result = rb.column("result")
    kind = pc.struct_field(result, "type")
    message = pc.struct_field(result, "message")
    content = pc.struct_field(message, "content")
    blocks = pc.list_value_length(content)
    if pc.any(pc.greater(blocks, 1)).as_py():  # rare shape: per-row code, same output
        cols = _empty_columns()
        for record in rb.to_pylist():
            _append_result(cols, record.get("custom_id"), record.get("result") or {}, model)
        table = _assemble(
            {name: pa.array(v, type=CLAUDE_MESSAGES_SCHEMA.field(name).type) for name, v in cols.items()},
            request_hash,
            prompts.take(positions),
            batch_id,
            created_at,
            n,
        )
        return ParsedChunk(table, _outcomes(request_hash, table.column("success")))
    succeeded = pc.fill_null(pc.equal(kind, "succeeded"), False)
    single = pc.and_(pc.is_valid(content), pc.equal(blocks, 1))
    flat = pc.list_flatten(pc.filter(content, single))
    texts = pc.if_else(pc.equal(pc.struct_field(flat, "type"), "text"), pc.struct_field(flat, "text"), "")
    response = pc.replace_with_mask(pa.nulls(n, pa.string()), pc.fill_null(single, False), texts)
    response = pc.if_else(pc.and_(succeeded, pc.is_null(response)), "", response)
    usage = pc.struct_field(message, "usage")
    error = pc.struct_field(result, "error")
    inner = pc.struct_field(error, "error")
    errored = pc.equal(kind, "errored")
    null_str = pa.scalar(None, pa.string())
    error_type = pc.if_else(
        succeeded,
        null_str,
        pc.if_else(
            errored,
            pc.coalesce(pc.struct_field(inner, "type"), pc.struct_field(error, "type"), "error"),
            kind,
        ),
    )
    unknown_text = pc.binary_join_element_wise("unknown result type '", kind, "'", "")
    error_text = pc.case_when(
        pc.make_struct(succeeded, errored, pc.equal(kind, "expired"), pc.equal(kind, "canceled")),
        null_str,
        pc.coalesce(pc.struct_field(inner, "message"), pc.struct_field(error, "message"), ""),
        EXPIRED_MESSAGE,
        CANCELED_MESSAGE,
        unknown_text,
    )
    null_when_failed = lambda arr: pc.if_else(succeeded, arr, pa.scalar(None, arr.type))  # noqa: E731
    parsed = {
        "custom_id": custom_id,
        "response": response,
        "model": pc.if_else(succeeded, pc.coalesce(pc.struct_field(message, "model"), model), model),
        "input_tokens": null_when_failed(pc.struct_field(usage, "input_tokens")),
        "output_tokens": null_when_failed(pc.struct_field(usage, "output_tokens")),
        "success": succeeded,
        "error": error_text,
        "error_type": error_type,
        "stop_reason": null_when_failed(pc.struct_field(message, "stop_reason")),
        "cache_creation_input_tokens": null_when_failed(
            pc.struct_field(usage, "cache_creation_input_tokens")
        ),
        "cache_read_input_tokens": null_when_failed(pc.struct_field(usage, "cache_read_input_tokens")),
        "result_type": kind,
    }
    table = _assemble(parsed, request_hash, prompts.take(positions), batch_id, created_at, n)
    return ParsedChunk(table, _outcomes(request_hash, succeeded))


def _assemble(
    parsed: dict[str, Any],
    request_hash: Any,
    prompt: Any,
    batch_id: str,
    created_at: datetime,
    n: int,
) -> pa.Table:
    arrays = {
        **parsed,
        "batch_id": pa.repeat(pa.scalar(batch_id, pa.string()), n),
        "prompt": prompt,
        "request_hash": request_hash,
        "created_at": pa.repeat(pa.scalar(created_at, TIMESTAMP), n),
        "processing_time_ms": pa.nulls(n, pa.float64()),
    }
    return pa.Table.from_arrays(
        [arrays[f.name] for f in CLAUDE_MESSAGES_SCHEMA], schema=CLAUDE_MESSAGES_SCHEMA
    )


def _outcomes(request_hash: Any, success: Any) -> list[tuple[str, bool]]:
    return [
        (h, bool(ok))
        for h, ok in zip(request_hash.to_pylist(), success.to_pylist(), strict=True)
        if h is not None
    ]


def parse_results_lines(
    raw_path: Path,
    manifest: pa.Table,
    batch_id: str,
    model: str,
    created_at: datetime,
    chunk_rows: int = ARROW_CHUNK_ROWS,
    on_unknown: Callable[[str], None] | None = None,
) -> Iterator[ParsedChunk]:
    """The exact path: orjson per line, dict custom_id -> manifest row; O(n), one chunk in memory."""
    index = {cid: i for i, cid in enumerate(manifest.column("custom_id").to_pylist())}
    hashes = manifest.column("request_hash")
    prompts = manifest.column("prompt")
    cols: dict[str, list[Any]] = _empty_columns()
    rows: list[int | None] = []
    with open(raw_path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = orjson.loads(line)
            custom_id = record.get("custom_id")
            position = index.get(custom_id)
            if position is None and on_unknown is not None:
                on_unknown(custom_id)
            rows.append(position)
            _append_result(cols, custom_id, record.get("result") or {}, model)
            if len(rows) >= chunk_rows:
                yield _chunk(cols, rows, hashes, prompts, batch_id, created_at)
                cols, rows = _empty_columns(), []
    if rows:
        yield _chunk(cols, rows, hashes, prompts, batch_id, created_at)


_PARSED = (
    "custom_id",
    "response",
    "model",
    "input_tokens",
    "output_tokens",
    "success",
    "error",
    "error_type",
    "stop_reason",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "result_type",
)


def _empty_columns() -> dict[str, list[Any]]:
    return {name: [] for name in _PARSED}


def _append_result(cols: dict[str, list[Any]], custom_id: Any, result: dict[str, Any], model: str) -> None:
    kind = result.get("type")
    cols["custom_id"].append(custom_id)
    cols["result_type"].append(kind)
    if kind == "succeeded":
        message = result.get("message") or {}
        usage = message.get("usage") or {}
        cols["response"].append(_text(message))
        cols["model"].append(message.get("model") or model)
        cols["input_tokens"].append(usage.get("input_tokens"))
        cols["output_tokens"].append(usage.get("output_tokens"))
        cols["cache_creation_input_tokens"].append(usage.get("cache_creation_input_tokens"))
        cols["cache_read_input_tokens"].append(usage.get("cache_read_input_tokens"))
        cols["stop_reason"].append(message.get("stop_reason"))
        cols["success"].append(True)
        cols["error"].append(None)
        cols["error_type"].append(None)
        return
    for name in ("response", "input_tokens", "output_tokens", "stop_reason"):
        cols[name].append(None)
    cols["cache_creation_input_tokens"].append(None)
    cols["cache_read_input_tokens"].append(None)
    cols["model"].append(model)
    cols["success"].append(False)
    if kind == "errored":
        envelope: dict[str, Any] = result.get("error") or {}
        inner = envelope.get("error")
        detail: dict[str, Any] = inner if isinstance(inner, dict) else envelope
        cols["error_type"].append(detail.get("type") or "error")
        cols["error"].append(detail.get("message") or "")
    elif kind == "expired":
        cols["error_type"].append("expired")
        cols["error"].append(EXPIRED_MESSAGE)
    elif kind == "canceled":
        cols["error_type"].append("canceled")
        cols["error"].append(CANCELED_MESSAGE)
    else:
        cols["error_type"].append(str(kind))
        cols["error"].append(f"unknown result type {kind!r}")


def _chunk(
    cols: dict[str, list[Any]],
    rows: list[int | None],
    hashes: pa.ChunkedArray,
    prompts: pa.ChunkedArray,
    batch_id: str,
    created_at: datetime,
) -> ParsedChunk:
    take = pa.array(rows, type=pa.int64())
    request_hash = hashes.take(take)
    parsed = {name: pa.array(v, type=CLAUDE_MESSAGES_SCHEMA.field(name).type) for name, v in cols.items()}
    table = _assemble(parsed, request_hash, prompts.take(take), batch_id, created_at, len(rows))
    return ParsedChunk(table, _outcomes(request_hash, table.column("success")))


def invalid_rows(invalid: Sequence[InvalidPrompt], model: str, when: datetime | None = None) -> pa.Table:
    """Rejected prompts as ``success=false`` rows (error_type ``invalid_request``): recorded, not dropped."""
    n = len(invalid)
    stamp = when or datetime.now(UTC)
    data: dict[str, Any] = {
        "batch_id": pa.nulls(n, pa.string()),
        "custom_id": [item.custom_id for item in invalid],
        "prompt": [item.text for item in invalid],
        "response": pa.nulls(n, pa.string()),
        "model": [model] * n,
        "input_tokens": pa.nulls(n, pa.int64()),
        "output_tokens": pa.nulls(n, pa.int64()),
        "created_at": pa.repeat(pa.scalar(stamp, TIMESTAMP), n),
        "processing_time_ms": pa.nulls(n, pa.float64()),
        "success": [False] * n,
        "error": [item.reason for item in invalid],
        "error_type": [INVALID_TYPE] * n,
        "request_hash": pa.nulls(n, pa.string()),
        "stop_reason": pa.nulls(n, pa.string()),
        "cache_creation_input_tokens": pa.nulls(n, pa.int64()),
        "cache_read_input_tokens": pa.nulls(n, pa.int64()),
        "result_type": ["invalid"] * n,
    }
    return pa.Table.from_arrays(
        [pa.array(data[f.name], type=f.type) for f in CLAUDE_MESSAGES_SCHEMA], schema=CLAUDE_MESSAGES_SCHEMA
    )


def parse_timestamp(value: Any) -> datetime:
    """An API timestamp (RFC 3339 string or datetime) as an aware UTC datetime; now if missing."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC)
