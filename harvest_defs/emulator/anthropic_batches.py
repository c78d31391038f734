"""Message Batches routes: create, retrieve, list, cancel, delete and the results JSONL.

Create validates the whole request set up front (size limits → 413; malformed requests, bad or
duplicate ``custom_id`` → 400 naming them) and then keeps only compact columns (see
``anthropic_batch_store``). Model-dependent problems (unknown model, ``max_tokens`` over the model's
limit) do not fail the create: like the real API they surface as that request's ``errored`` result.
The CPU-heavy part of create runs in a worker thread so the server keeps answering polls meanwhile.
"""

from __future__ import annotations

import json
import re
import time
from array import array
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.anthropic_batch_store import (
    BatchStore,
    StoredBatch,
    advance,
    batch_json,
    cancel,
    is_archived,
    iter_results,
    quiet_injected_faults,
)
from harvest_defs.emulator.anthropic_generate import generate
from harvest_defs.emulator.anthropic_params import ParamsError, parse_params
from harvest_defs.emulator.anthropic_wire import api_json, check_version, full_message, is_beta, new_id
from harvest_defs.emulator.content import count_tokens, summarize
from harvest_defs.emulator.errors import anthropic_error, new_request_id
from harvest_defs.emulator.prompt_cache import CacheUsage, batch_hit_allowed
from harvest_defs.emulator.state import EmulatorState

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_REQUEST_KEYS = frozenset({"custom_id", "params"})
_MAX_ERRORS_SHOWN = 5
_LIST_MAX = 1000


class CreateRejected(Exception):
    """A create that fails as a whole; carries the status and the message for the error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _request_error(i: int, request: Any, seen: set[str]) -> str | None:
    """Shape and custom_id problems of one batch request (``None`` when it is well-formed)."""
    if not isinstance(request, dict):
        return f"requests.{i}: Input should be an object with custom_id and params"
    for key in request:
        if key not in _REQUEST_KEYS:
            return f"requests.{i}.{key}: Extra inputs are not permitted"
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str):
        return f"requests.{i}.custom_id: Field required (a string)"
    if not CUSTOM_ID.match(custom_id):
        return f"requests.{i}.custom_id: {custom_id!r} does not match ^[a-zA-Z0-9_-]{{1,64}}$"
    if custom_id in seen:
        return f"requests.{i}.custom_id: duplicate custom_id {custom_id!r}; custom_id must be unique"
    seen.add(custom_id)
    if "params" not in request:
        return f"requests.{i}.params: Field required (custom_id {custom_id!r})"
    return None


def build_batch(
    body: bytes, state: EmulatorState, batch_id: str, seq: int, now: float, beta: bool = False
) -> StoredBatch:
    """Parse and validate a create body into a StoredBatch, or raise CreateRejected.

    Requests are "processed" here, in order (the answers are deterministic): prompt-cache writes of an
    earlier request can be read by a later one, best-effort as documented (``batch_cache_hit_rate``).
    ``beta`` (``?beta=true``) accepts the beta Messages parameters.
    """
    cfg = state.config
    try:
        payload = json.loads(body)
    except ValueError:
        raise CreateRejected(400, "There was an error parsing the body of your request as JSON") from None
    if not isinstance(payload, dict) or set(payload) - {"requests"}:
        raise CreateRejected(400, "body: expected an object with a single field 'requests'")
    requests = payload.get("requests")
    if not isinstance(requests, list):
        raise CreateRejected(400, "requests: Field required (a list)")
    if not requests:
        raise CreateRejected(400, "requests: at least one request is required")
    if len(requests) > cfg.anthropic_batch_max_requests:
        raise CreateRejected(
            413,
            f"requests: a Message Batch may hold at most {cfg.anthropic_batch_max_requests} requests; "
            f"this one has {len(requests)}",
        )

    custom_ids: list[str] = []
    models: list[str] = []
    texts: list[str] = []
    stops = bytearray()
    input_tokens: array[int] = array("q")
    output_tokens: array[int] = array("q")
    invalid: dict[int, tuple[str, str]] = {}
    rich: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        problem = _request_error(i, request, seen)
        if problem is None:
            parsed = parse_params(request["params"], beta=beta)
            if isinstance(parsed, ParamsError) and not parsed.model_error:
                problem = f"requests.{i}.params.{parsed.message} (custom_id {request['custom_id']!r})"
            elif not isinstance(parsed, ParamsError) and parsed.stream:
                problem = f"requests.{i}.params.stream: streaming is not supported in Message Batches"
        if problem is not None:
            errors.append(problem)
            continue
        if errors:
            continue  # the create fails anyway; only keep scanning for more errors to report
        custom_ids.append(request["custom_id"])
        if isinstance(parsed, ParamsError):
            invalid[i] = (parsed.error_type, parsed.message)
            model = request["params"]["model"]
            models.append(model if isinstance(model, str) else "")
            texts.append("")
            stops.append(0)
            input_tokens.append(0)
            output_tokens.append(0)
            continue
        if parsed.extras is None:  # the plain fast path: one text block, no cache
            text, stop_reason = summarize(parsed.prompt, parsed.max_tokens)
            models.append(parsed.model)
            texts.append(text)
            stops.append(1 if stop_reason == "max_tokens" else 0)
            input_tokens.append(parsed.input_tokens)
            output_tokens.append(count_tokens(text))
            continue
        answer = generate(parsed)
        usage = CacheUsage(parsed.input_tokens)
        if parsed.extras.cached:
            hit = batch_hit_allowed(request["custom_id"], cfg.batch_cache_hit_rate)
            usage = state.prompt_cache.account(parsed.model, parsed.extras.params, state.now(), hit)
        plain_text = answer.plain_text
        cache_free = usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
        plain = plain_text is not None and cache_free
        if not plain:
            # Thinking, tool_use, stop sequences or cache usage: keep the whole Message (rare, so sparse).
            rich[len(custom_ids) - 1] = full_message(
                "",
                parsed.model,
                answer.content,
                answer.stop_reason,
                answer.stop_sequence,
                usage.usage_fields(),
                answer.output_tokens,
                "batch",
            )
        models.append(parsed.model)
        texts.append(plain_text if plain and plain_text is not None else "")
        stops.append(1 if answer.stop_reason == "max_tokens" else 0)
        input_tokens.append(usage.input_tokens)
        output_tokens.append(answer.output_tokens)
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = len(errors) - _MAX_ERRORS_SHOWN
        raise CreateRejected(400, shown + (f" (and {more} more invalid requests)" if more > 0 else ""))
    return StoredBatch(
        id=batch_id,
        seq=seq,
        created_at=now,
        custom_ids=custom_ids,
        models=models,
        texts=texts,
        max_tokens_stop=stops,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        invalid=invalid,
        rich=rich,
    )


def routes(state: EmulatorState) -> list[BaseRoute]:
    store = BatchStore()
    state.on_reset(store.clear)
    quiet_injected_faults()

    def not_found(batch_id: str) -> Response:
        return anthropic_error(404, f"Message Batch {batch_id!r} not found")

    def current(batch_id: str, now: float) -> StoredBatch | None:
        with store.lock:
            batch = store.batches.get(batch_id)
            if batch is not None:
                advance(batch, now, state)
            return batch

    async def create(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        limit = state.config.anthropic_batch_max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return anthropic_error(413, f"Request exceeds the maximum size of {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            return anthropic_error(413, f"Request exceeds the maximum size of {limit} bytes")
        now = time.time()
        try:
            batch = await run_in_threadpool(
                build_batch,
                body,
                state,
                new_id("msgbatch"),
                store.next_seq(),
                now,
                is_beta(request),
            )
        except CreateRejected as rejected:
            return anthropic_error(rejected.status, rejected.message)
        store.add(batch)
        state.count("anthropic_batches_created")
        state.count("anthropic_batch_requests", batch.size)
        return api_json(batch_json(batch, str(request.base_url), now, state.config))

    async def retrieve(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        batch_id = request.path_params["batch_id"]
        now = time.time()
        batch = await run_in_threadpool(current, batch_id, now)
        if batch is None:
            return not_found(batch_id)
        return api_json(batch_json(batch, str(request.base_url), now, state.config))

    async def list_batches(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        query = request.query_params
        raw_limit = query.get("limit", "20")
        try:
            limit = int(raw_limit)
        except ValueError:
            return anthropic_error(400, f"limit: Input should be a valid integer, got {raw_limit!r}")
        if not 1 <= limit <= _LIST_MAX:
            return anthropic_error(400, f"limit: Input should be between 1 and {_LIST_MAX}")
        after_id, before_id = query.get("after_id"), query.get("before_id")
        if after_id is not None and before_id is not None:
            return anthropic_error(400, "after_id and before_id cannot both be set")
        page = store.page(limit, after_id, before_id)
        if page is None:
            return anthropic_error(400, f"unknown Message Batch id in cursor: {after_id or before_id!r}")
        batches, has_more = page
        now = time.time()

        def advance_all() -> None:
            with store.lock:
                for batch in batches:
                    advance(batch, now, state)

        await run_in_threadpool(advance_all)
        base_url = str(request.base_url)
        data = [batch_json(b, base_url, now, state.config) for b in batches]
        return api_json(
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def cancel_batch(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        batch_id = request.path_params["batch_id"]
        now = time.time()
        with store.lock:
            batch = store.batches.get(batch_id)
            if batch is None:
                return not_found(batch_id)
            advance(batch, now, state)
            if batch.processing_status == "ended":
                return anthropic_error(400, f"Message Batch {batch_id!r} has already ended")
            cancel(batch, now, state)
            body = batch_json(batch, str(request.base_url), now, state.config)
        return api_json(body)

    async def delete_batch(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        batch_id = request.path_params["batch_id"]
        now = time.time()
        with store.lock:
            batch = store.batches.get(batch_id)
            if batch is None:
                return not_found(batch_id)
            advance(batch, now, state)
            if batch.processing_status != "ended":
                return anthropic_error(
                    400,
                    f"Message Batch {batch_id!r} is still {batch.processing_status}; only ended batches "
                    "can be deleted (cancel it first)",
                )
            del store.batches[batch_id]
        return api_json({"id": batch_id, "type": "message_batch_deleted"})

    async def results(request: Request) -> Response:
        denied = await state.admit("anthropic", request) or check_version(request.headers)
        if denied is not None:
            return denied
        batch_id = request.path_params["batch_id"]
        now = time.time()
        batch = await run_in_threadpool(current, batch_id, now)
        if batch is None:
            return not_found(batch_id)
        if batch.processing_status != "ended":
            return anthropic_error(400, f"Message Batch {batch_id!r} has not ended yet; no results")
        if is_archived(batch, now, state.config):
            return anthropic_error(404, f"results of Message Batch {batch_id!r} have been archived")
        state.count("anthropic_results_downloads")
        cut_at = batch.size // 2 if state.chance(state.config.results_truncate_rate) else None
        if cut_at is not None:
            state.count("anthropic_results_truncated")
        return StreamingResponse(
            iter_results(batch, cut_at),
            media_type="application/x-jsonl",
            headers={"request-id": new_request_id()},
        )

    return [
        Route("/v1/messages/batches", create, methods=["POST"]),
        Route("/v1/messages/batches", list_batches, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", delete_batch, methods=["DELETE"]),
        Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/messages/batches/{batch_id}/results", results, methods=["GET"]),
    ]
