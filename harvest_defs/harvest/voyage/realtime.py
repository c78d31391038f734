"""Real-time embeddings: many requests in flight, paced by the RPM/TPM limiter, failures contained.

How one run goes: inputs are packed into requests (``packing``), an asyncio loop (in a helper thread, so
the dlt resource stays a plain generator) keeps up to ``max_concurrency`` requests in flight through the
voyageai SDK's own transport (``voyageai.Embedding.acreate`` over a shared aiohttp session), each request
first taking its share of the sliding-window budget (``ratelimit``). Outcomes:

- 429: the request's window entry is released (the server did not admit it), every sender pauses for
  ``retry-after`` and the request is retried (budget taken again);
- 5xx, timeouts, dropped connections: retried with exponential backoff and jitter (tenacity);
- 400 on a multi-text request (e.g. more tokens than estimated): split in halves and retried, which also
  isolates a single bad text;
- anything still failing after ``max_attempts``: its texts become :class:`EmbedFailure` entries in the
  report (logged, never silently dropped); the rest of the run goes on, and a re-run sends only them.

Per-text ``total_tokens``: the request's billed ``usage.total_tokens`` split across its texts by their
estimated tokens with largest-remainder rounding (``packing.split_tokens``): every request's rows sum to
exactly what was billed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from harvest_defs.harvest.voyage.arrow import decode_base64_vectors, embeddings_table
from harvest_defs.harvest.voyage.client import VoyageCredentials, embed_request_kwargs
from harvest_defs.harvest.voyage.packing import (
    EmbedInput,
    pack_requests,
    request_token_budget,
    split_tokens,
)
from harvest_defs.harvest.voyage.ratelimit import SlidingWindowLimiter
from harvest_defs.harvest.voyage.settings import MAX_INPUTS_PER_REQUEST, model_spec

log = logging.getLogger("harvest_defs.harvest.voyage")
ROWS_PER_TABLE = 5000
# Finished requests waiting for the consumer (dlt), per in-flight slot. Bounded so a slow load applies
# backpressure to the senders instead of queueing every vector of the run in memory: at most
# ``max_concurrency * QUEUED_PER_SLOT`` tables of <= 1000 x 1024 floats (4 MB) each, 128 MB by default.
QUEUED_PER_SLOT = 4
_DONE = object()


@dataclass(frozen=True)
class EmbedFailure:
    embedding_id: str
    text_hash: str
    reason: str


@dataclass
class RealtimeReport:
    requests: int = 0  # successful HTTP requests
    attempts: int = 0  # every HTTP attempt, including retried ones
    throttled: int = 0  # 429s absorbed
    retries: int = 0
    splits: int = 0
    texts_embedded: int = 0
    tokens: int = 0
    failures: list[EmbedFailure] = field(default_factory=list)


def _retry_after(exc: BaseException, default: float = 1.0) -> float:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _is_retryable(exc: BaseException) -> bool:
    import aiohttp
    from voyageai import error

    if isinstance(exc, error.InvalidRequestError | error.AuthenticationError | error.MalformedRequestError):
        return False
    if isinstance(
        exc,
        error.RateLimitError
        | error.ServiceUnavailableError
        | error.ServerError
        | error.APIConnectionError
        | error.Timeout
        | error.TryAgain
        | aiohttp.ClientError
        | asyncio.TimeoutError
        | ConnectionError,
    ):
        return True
    if isinstance(exc, error.APIError):  # non-JSON or truncated body, unknown 5xx
        status = exc.http_status
        return status is None or not 400 <= int(status) < 500
    return False


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


class RealtimeEmbedder:
    """Embeds prepared inputs with the real-time API; iterate :meth:`embed` to get Arrow tables."""

    def __init__(
        self,
        creds: VoyageCredentials,
        model: str,
        *,
        input_type: str | None = "document",
        output_dimension: int | None = None,
        truncation: bool = True,
        rpm: int | None = None,
        tpm: int | None = None,
        max_concurrency: int | None = None,
        batch_size: int | None = None,
        max_attempts: int = 8,
        timeout: float = 120.0,
    ) -> None:
        self.creds = creds
        self.spec = model_spec(model)
        self.model = model
        self.input_type = input_type
        self.dim = self.spec.dimension(output_dimension)
        self.output_dimension = self.spec.request_output_dimension(output_dimension)
        self.truncation = truncation
        self.rpm = rpm if rpm is not None else self.spec.rpm
        self.tpm = tpm if tpm is not None else self.spec.tpm
        self.max_concurrency = max_concurrency or 8
        self.max_inputs = min(batch_size or MAX_INPUTS_PER_REQUEST, MAX_INPUTS_PER_REQUEST)
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.report = RealtimeReport()
        self.limiter: SlidingWindowLimiter | None = None

    def __repr__(self) -> str:
        return f"RealtimeEmbedder(model={self.model!r}, dim={self.dim}, rpm={self.rpm}, tpm={self.tpm})"

    def requests_for(self, inputs: Sequence[EmbedInput]) -> list[list[EmbedInput]]:
        return list(pack_requests(inputs, request_token_budget(self.spec, self.tpm), self.max_inputs))

    # --- sync facade ---------------------------------------------------------------------------------
    def embed(self, inputs: Sequence[EmbedInput], rows_per_table: int = ROWS_PER_TABLE) -> Iterator[pa.Table]:
        """Arrow tables of successful embeddings, as requests complete (order not guaranteed)."""
        if not inputs:
            return
        results: queue.Queue[Any] = queue.Queue(maxsize=self.max_concurrency * QUEUED_PER_SLOT)
        stop = threading.Event()
        worker = threading.Thread(
            target=lambda: _put_until_stopped(
                results, self._run_loop(self.requests_for(inputs), results, stop), stop
            ),
            name="voyage-embed",
            daemon=True,
        )
        worker.start()
        pending: list[pa.Table] = []
        rows = 0
        try:
            while True:
                item = results.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                pending.append(item)
                rows += item.num_rows
                if rows >= rows_per_table:
                    yield pa.concat_tables(pending)
                    pending, rows = [], 0
            if pending:
                yield pa.concat_tables(pending)
        finally:
            stop.set()
            worker.join()
        if self.report.failures:
            log.error(
                "%d text(s) could not be embedded (a re-run sends them again): %s",
                len(self.report.failures),
                "; ".join(f"{f.embedding_id}: {f.reason}" for f in self.report.failures[:20]),
            )

    def _run_loop(
        self, requests: list[list[EmbedInput]], out: queue.Queue[Any], stop: threading.Event
    ) -> Any:
        try:
            asyncio.run(self._run(requests, out, stop))
        except BaseException as exc:  # surfaced in the consuming thread
            return exc
        return _DONE

    # --- async core ----------------------------------------------------------------------------------
    async def _run(
        self, requests: list[list[EmbedInput]], out: queue.Queue[Any], stop: threading.Event
    ) -> None:
        import aiohttp
        import voyageai

        self.limiter = SlidingWindowLimiter(self.rpm, self.tpm)
        slots = asyncio.Semaphore(self.max_concurrency)
        connector = aiohttp.TCPConnector(limit=self.max_concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            token = voyageai.aiosession.set(session)
            try:
                tasks: list[asyncio.Task[None]] = []
                for request in requests:
                    if stop.is_set():
                        break
                    await slots.acquire()
                    task = asyncio.create_task(self._send(request, out, stop))
                    task.add_done_callback(lambda _t: slots.release())
                    tasks.append(task)
                await asyncio.gather(*tasks)
            finally:
                voyageai.aiosession.reset(token)

    async def _send(self, request: list[EmbedInput], out: queue.Queue[Any], stop: threading.Event) -> None:
        from voyageai import error

        try:
            table = await self._call_with_retries(request)
        except error.AuthenticationError:
            raise  # a wrong key fails every request: stop the run loudly instead of reporting each text
        except error.InvalidRequestError as exc:
            if len(request) > 1:  # e.g. more tokens than estimated: halve and try again
                self.report.splits += 1
                half = len(request) // 2
                await self._send(request[:half], out, stop)
                await self._send(request[half:], out, stop)
                return
            self._fail(request, exc)
            return
        except Exception as exc:
            self._fail(request, exc)
            return
        while not stop.is_set():  # a full queue: wait without blocking the loop (other requests go on)
            try:
                out.put_nowait(table)
                return
            except queue.Full:
                await asyncio.sleep(0.01)

    def _fail(self, request: list[EmbedInput], exc: BaseException) -> None:
        reason = _reason(exc)
        self.report.failures.extend(EmbedFailure(i.embedding_id, i.text_hash, reason) for i in request)

    def _wait(self, retry_state: Any) -> float:
        from voyageai import error

        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.report.retries += 1
        if isinstance(exc, error.RateLimitError):
            self.report.throttled += 1
            assert self.limiter is not None
            self.limiter.throttled(_retry_after(exc))
            return random.uniform(0.0, 0.05)  # the limiter holds everyone until retry-after
        backoff = min(30.0, 0.5 * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)  # exponential backoff, full jitter on the upper half

    async def _call_with_retries(self, request: list[EmbedInput]) -> pa.Table:
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        table: pa.Table | None = None
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        ):
            with attempt:
                table = await self._call(request)
        assert table is not None
        return table

    async def _call(self, request: list[EmbedInput]) -> pa.Table:
        import voyageai
        from voyageai import error

        assert self.limiter is not None
        tokens = sum(i.tokens for i in request)
        ticket = await self.limiter.acquire(tokens)
        self.report.attempts += 1
        started = time.perf_counter()
        try:
            response = await voyageai.Embedding.acreate(
                input=[i.send for i in request],
                model=self.model,
                input_type=self.input_type,
                truncation=self.truncation,
                output_dimension=self.output_dimension,
                encoding_format="base64",  # explicit: the SDK then hands us the base64 strings untouched
                **embed_request_kwargs(self.creds, self.timeout),
            )
        except error.RateLimitError:
            self.limiter.release(ticket)  # refused, not admitted: it holds none of the server's window
            raise
        except BaseException:
            self.limiter.settle(ticket)  # may have been admitted before failing: count it, stamped now
            raise
        self.limiter.settle(ticket)  # stamped on arrival: never earlier than the server's own stamp
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        data = sorted(response["data"], key=lambda d: d.get("index", 0))
        if len(data) != len(request):
            raise ValueError(f"asked for {len(request)} embeddings, got {len(data)}")
        vectors = decode_base64_vectors([d["embedding"] for d in data], self.dim)
        billed = int(response["usage"]["total_tokens"])
        self.limiter.succeeded()
        self.report.requests += 1
        self.report.texts_embedded += len(request)
        self.report.tokens += billed
        return embeddings_table(
            ids=[i.embedding_id for i in request],
            texts=[i.text for i in request],
            text_hashes=[i.text_hash for i in request],
            vectors=vectors,
            tokens=split_tokens(billed, [i.tokens for i in request]),
            model=self.model,
            dim=self.dim,
            input_type=self.input_type,
            processing_time_ms=elapsed_ms,
        )


def _put_until_stopped(out: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put the worker's last item (done, or its exception) unless the consumer has gone (no hang on join)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.05)
            return
        except queue.Full:
            continue
