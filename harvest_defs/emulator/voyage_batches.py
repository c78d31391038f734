"""Voyage Batch API (public preview, OpenAI style): validate at create, advance by clock, write output lazily.

All three documented endpoints (embeddings, contextualized embeddings, rerank; see
:mod:`voyage_batch_input`).

A batch keeps only what it needs to reproduce its output: a hard link to the input file, one outcome
byte and one token count per request line. Status is a pure function of time since creation
(``batch_processing_seconds``, stored per batch): ``validating`` for the first 10%, ``in_progress`` (with
``request_counts`` growing) until 90%, ``finalizing``, then ``completed``; 0 s means "completed on the next
retrieve". The output/error JSONL files are generated on their first read by re-embedding the input, so a
20k-input batch completes instantly and its output is written once, streamed from disk.

Where the contract is silent the emulator chooses (and the tests pin down): request-level problems
(unknown file, endpoint, model, params, metadata) are a 400 at create; content problems (bad JSON line,
duplicate ``custom_id``, >1000 inputs on a line, token limits, more than ``voyage_batch_max_inputs``
inputs) let the batch be created and then fail validation with ``errors``. Errored and expired lines go to
the error file; a cancelled batch's output holds the lines finished before the cancel.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.errors import voyage_error
from harvest_defs.emulator.state import EmulatorState
from harvest_defs.emulator.voyage_batch_input import (
    ENDPOINTS,
    Endpoint,
    Validation,
    check_metadata,
    model_name,
    request_body,
    validate_input,
)
from harvest_defs.emulator.voyage_embed import VoyageRequestError
from harvest_defs.emulator.voyage_files import FileStore, StoredFile, _int_param, _now, new_id, page, rfc3339

COMPLETION_WINDOW = "12h"
WINDOW_SECONDS = 12 * 3600
MAX_INFLIGHT_BATCHES = 100
MAX_INFLIGHT_TOKENS = 1_000_000_000
ACTIVE = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
# Fractions of batch_processing_seconds at which validating/in_progress end; cancelling lasts 2% (<= 5 s).
VALIDATED_AT, FINALIZING_AT, CANCEL_FRACTION, CANCEL_MAX_SECONDS = 0.1, 0.9, 0.02, 5.0

OK, ERRORED, EXPIRED = 0, 1, 2
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


@dataclass
class VoyageBatch:
    id: str
    endpoint: str
    input_file_id: str
    endpoint_spec: Endpoint
    params: Any  # the endpoint's parsed request_params (EmbedParams, RerankParams)
    metadata: dict[str, str] | None
    created: float
    processing_seconds: float
    input_path: Path
    validation: Validation
    outcomes: bytearray
    max_inputs: int
    status: str = "validating"
    times: dict[str, float | None] = field(default_factory=dict)
    done: int = 0
    output_file: StoredFile | None = None
    error_file: StoredFile | None = None
    billed_tokens: int = 0
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    written: bool = False

    # --- lifecycle --------------------------------------------------------------------------------
    def at(self, fraction: float) -> float:
        return self.created + fraction * self.processing_seconds

    def progress(self, now: float) -> int:
        start, end = self.at(VALIDATED_AT), self.at(FINALIZING_AT)
        if now >= end or end <= start:
            return len(self.outcomes)
        return int(len(self.outcomes) * (now - start) / (end - start))

    def refresh(self, now: float, store: FileStore, state: EmulatorState) -> None:
        """Advance the status to what the clock says (idempotent; may pass several phases at once)."""
        if self.status == "validating" and now >= self.at(VALIDATED_AT):
            if self.validation.error_count:
                self.status, self.times["failed_at"] = "failed", self.at(VALIDATED_AT)
                return
            self.status, self.times["in_progress_at"] = "in_progress", self.at(VALIDATED_AT)
        if self.status == "in_progress":
            self.done = self.progress(now)
            if now >= self.at(FINALIZING_AT):
                self.status, self.times["finalizing_at"] = "finalizing", self.at(FINALIZING_AT)
        if self.status == "finalizing" and now >= self.at(1.0):
            self.done = len(self.outcomes)
            self.status, self.times["completed_at"] = "completed", self.at(1.0)
            self._register_results(store, state)
        if self.status == "cancelling":
            began = self.times["cancelling_at"] or now
            delay = min(CANCEL_MAX_SECONDS, CANCEL_FRACTION * self.processing_seconds)
            if now >= began + delay:
                self.status, self.times["cancelled_at"] = "cancelled", began + delay
                self._register_results(store, state)

    def cancel(self, now: float, store: FileStore, state: EmulatorState) -> bool:
        self.refresh(now, store, state)
        if self.status not in ("validating", "in_progress"):
            return False
        self.status, self.times["cancelling_at"] = "cancelling", now
        return True

    def counts(self) -> tuple[int, int]:
        """(completed, failed) among the lines finished so far."""
        finished = self.outcomes[: self.done]
        failed = self.done - finished.count(OK)
        return self.done - failed, failed

    def _register_results(self, store: FileStore, state: EmulatorState) -> None:
        failed = self.counts()[1]
        self.billed_tokens = sum(
            t for t, o in zip(self.validation.tokens, self.outcomes[: self.done], strict=False) if o == OK
        )
        state.count("voyage_batches_ended")
        state.count("voyage_batch_tokens", self.billed_tokens)
        directory = store.directory()
        self.output_file = store.add_lazy(
            "batch-output", f"{self.id}_output.jsonl", directory / f"{self.id}.output", self.write_results
        )
        if failed:
            self.error_file = store.add_lazy(
                "batch-error", f"{self.id}_error.jsonl", directory / f"{self.id}.error", self.write_results
            )

    # --- output -----------------------------------------------------------------------------------
    def write_results(self) -> None:
        """Write the output and error JSONL in one pass over the input (blocking, once per batch)."""
        with self.write_lock:
            if self.written:
                return
            directory = self.input_path.parent
            out_tmp, err_tmp = directory / f"{self.id}.output.tmp", directory / f"{self.id}.error.tmp"
            with self.input_path.open("rb") as src, out_tmp.open("w") as out, err_tmp.open("w") as err:
                index = 0
                for raw in src:
                    if index >= self.done:
                        break
                    if not raw.strip():
                        continue
                    outcome = self.outcomes[index]
                    index += 1
                    line = json.loads(raw)
                    custom_id, request = request_body(line)
                    record: dict[str, Any] = {"batch_id": self.id, "custom_id": custom_id}
                    if outcome == OK:
                        body = self.endpoint_spec.answer(request, self.params, self.max_inputs)
                        record.update(response={"status_code": 200, "body": body}, error=None)
                        out.write(json.dumps(record, separators=(",", ":")) + "\n")
                    elif outcome == ERRORED:
                        record.update(
                            response={"status_code": 500, "message": "Internal Server Error"}, error=None
                        )
                        err.write(json.dumps(record) + "\n")
                    else:
                        record.update(
                            response=None, error={"code": "batch_expired", "message": EXPIRED_MESSAGE}
                        )
                        err.write(json.dumps(record) + "\n")
            os.replace(out_tmp, directory / f"{self.id}.output")
            if self.error_file is not None:
                os.replace(err_tmp, directory / f"{self.id}.error")
            else:
                err_tmp.unlink(missing_ok=True)
            self.written = True

    def to_json(self) -> dict[str, Any]:
        completed, failed = self.counts()
        total = 0 if self.status == "validating" else len(self.outcomes)
        errors = None
        if self.status == "failed":
            errors = {"object": "list", "data": self.validation.errors}

        def stamp(name: str) -> str | None:
            value = self.times.get(name)
            return rfc3339(value) if value is not None else None

        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": COMPLETION_WINDOW,
            "model": model_name(self.params),
            "status": self.status,
            "output_file_id": self.output_file.id if self.output_file else None,
            "error_file_id": self.error_file.id if self.error_file else None,
            "request_counts": {"total": total, "completed": completed, "failed": failed},
            "metadata": self.metadata,
            "created_at": rfc3339(self.created),
            "in_progress_at": stamp("in_progress_at"),
            "finalizing_at": stamp("finalizing_at"),
            "completed_at": stamp("completed_at"),
            "failed_at": stamp("failed_at"),
            "expected_completion_at": rfc3339(self.created + WINDOW_SECONDS),
            "cancelling_at": stamp("cancelling_at"),
            "cancelled_at": stamp("cancelled_at"),
        }


class BatchStore:
    def __init__(self) -> None:
        self.batches: dict[str, VoyageBatch] = {}

    def clear(self) -> None:
        self.batches.clear()

    def active(self, now: float, files: FileStore, state: EmulatorState) -> list[VoyageBatch]:
        for batch in self.batches.values():
            batch.refresh(now, files, state)
        return [b for b in self.batches.values() if b.status in ACTIVE]


def create_checks(body: object, files: FileStore) -> tuple[StoredFile, Endpoint, Any, dict[str, str] | None]:
    """Request-level validation of ``POST /v1/batches`` (each failure is a 400)."""
    if not isinstance(body, dict):
        raise VoyageRequestError("Request body must be a JSON object.")
    endpoint = body.get("endpoint")
    spec = ENDPOINTS.get(endpoint) if isinstance(endpoint, str) else None
    if spec is None:
        raise VoyageRequestError(
            f"Value '{endpoint}' supplied for 'endpoint' is not valid: use one of {tuple(ENDPOINTS)}."
        )
    if body.get("completion_window") != COMPLETION_WINDOW:
        raise VoyageRequestError(
            "Value supplied for 'completion_window' is not valid: only '12h' is supported."
        )
    file_id = body.get("input_file_id")
    stored = files.get(file_id) if isinstance(file_id, str) else None
    if stored is None or stored.purpose != "batch":
        raise VoyageRequestError(f"Input file '{file_id}' was not found or is not a 'batch' file.")
    request_params = body.get("request_params")
    if not isinstance(request_params, dict) or "model" not in request_params:
        raise VoyageRequestError("Field 'request_params' with a 'model' is required.")
    params = spec.parse(request_params)
    return stored, spec, params, check_metadata(body.get("metadata"))


def batch_routes(state: EmulatorState, files: FileStore, store: BatchStore) -> list[BaseRoute]:
    async def create(request: Request) -> Response:
        if denied := await state.admit("voyage", request):
            return denied
        try:
            body = await request.json()
        except ValueError:
            return voyage_error(400, "Request body must be JSON.")
        try:
            stored, spec, params, metadata = create_checks(body, files)
        except VoyageRequestError as exc:
            return voyage_error(400, str(exc))
        cfg = state.config
        now = _now()
        active = store.active(now, files, state)
        if len(active) >= MAX_INFLIGHT_BATCHES:
            return voyage_error(429, f"At most {MAX_INFLIGHT_BATCHES} batches may be in flight; retry later.")
        batch_id = new_id("batch-")
        link = files.new_path(f"{batch_id}.input")
        await asyncio.to_thread(os.link, stored.path, link)
        validation = await asyncio.to_thread(
            validate_input, link, spec, params, cfg.voyage_max_inputs, cfg.voyage_batch_max_inputs
        )
        in_flight = sum(sum(b.validation.tokens) for b in active)
        if in_flight + sum(validation.tokens) > MAX_INFLIGHT_TOKENS:
            link.unlink(missing_ok=True)
            return voyage_error(429, f"At most {MAX_INFLIGHT_TOKENS} tokens may be in flight; retry later.")
        outcomes = bytearray(len(validation.tokens))
        if not validation.error_count:
            for i in range(len(outcomes)):
                if state.chance(cfg.batch_errored_rate):
                    outcomes[i] = ERRORED
                elif state.chance(cfg.batch_expired_rate):
                    outcomes[i] = EXPIRED
        batch = VoyageBatch(
            id=batch_id,
            endpoint=body["endpoint"],
            input_file_id=stored.id,
            endpoint_spec=spec,
            params=params,
            metadata=metadata,
            created=now,
            processing_seconds=max(0.0, float(cfg.batch_processing_seconds)),
            input_path=link,
            validation=validation,
            outcomes=outcomes,
            max_inputs=cfg.voyage_max_inputs,
        )
        store.batches[batch_id] = batch
        state.count("voyage_batches_created")
        state.count("voyage_batch_inputs", validation.inputs)
        return JSONResponse(batch.to_json())

    async def lookup(request: Request) -> VoyageBatch | Response:
        if denied := await state.admit("voyage", request):
            return denied
        batch = store.batches.get(request.path_params["batch_id"])
        if batch is None:
            return voyage_error(404, f"Batch {request.path_params['batch_id']} not found.")
        return batch

    async def retrieve(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        found.refresh(_now(), files, state)
        return JSONResponse(found.to_json())

    async def cancel(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        if not found.cancel(_now(), files, state):
            return voyage_error(400, f"Cannot cancel a batch with status '{found.status}'.")
        return JSONResponse(found.to_json())

    async def list_batches(request: Request) -> Response:
        if denied := await state.admit("voyage", request):
            return denied
        try:
            limit = _int_param(request, "limit", 20, 1, 100)
        except ValueError as exc:
            return voyage_error(400, str(exc))
        newest_first = list(reversed(store.batches.values()))
        body = page(newest_first, request.query_params.get("after"), limit, key=lambda b: b.id)
        now = _now()
        for batch in body["data"]:
            batch.refresh(now, files, state)
        body["data"] = [b.to_json() for b in body["data"]]
        return JSONResponse(body)

    return [
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
    ]
