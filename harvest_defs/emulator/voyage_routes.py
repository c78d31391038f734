"""Voyage routes: real-time embeddings, rerank and contextualized embeddings, plus the Files and Batch APIs.

(api_contracts.md §2, §3; rerank and contextualized embeddings in :mod:`voyage_rerank` /
:mod:`voyage_context`.)

The embeddings handler is thin: admission (auth, faults, RPM/TPM charged with the request's tokens) comes
first, as on the real API, then validation and the deterministic vectors from :mod:`voyage_embed`. The
Files and Batch stores are cleared on emulator reset.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.content import count_tokens
from harvest_defs.emulator.errors import voyage_error
from harvest_defs.emulator.state import EmulatorState
from harvest_defs.emulator.voyage_batches import BatchStore, batch_routes
from harvest_defs.emulator.voyage_context import contextualized
from harvest_defs.emulator.voyage_embed import (
    VoyageRequestError,
    embeddings_body,
    estimate_tokens,
    parse_inputs,
    parse_params,
    prepare_texts,
)
from harvest_defs.emulator.voyage_files import FileStore, file_routes
from harvest_defs.emulator.voyage_rerank import rerank


def _texts_tokens(values: Any) -> int:
    if isinstance(values, str):
        return count_tokens(values)
    if isinstance(values, list):
        return sum(_texts_tokens(v) for v in values)
    return 0


def _rerank_estimate(body: Any) -> int:
    """Documented rerank token count: query tokens x documents + document tokens (for TPM limits)."""
    if not isinstance(body, dict):
        return 0
    documents = body.get("documents")
    n = len(documents) if isinstance(documents, list) else 0
    return _texts_tokens(body.get("query")) * n + _texts_tokens(documents)


def _context_estimate(body: Any) -> int:
    return _texts_tokens(body.get("inputs")) if isinstance(body, dict) else 0


def routes(state: EmulatorState) -> list[BaseRoute]:
    files, batches = FileStore(), BatchStore()

    def clear() -> None:
        batches.clear()
        files.clear()

    state.on_reset(clear)

    async def embeddings(request: Request) -> Response:
        raw = await request.body()
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = None
        if denied := await state.admit("voyage", request, estimate_tokens(body)):
            return denied
        if not isinstance(body, dict):
            return voyage_error(400, "Request body must be a JSON object.")
        try:
            params = parse_params(body)
            texts = parse_inputs(body.get("input"), state.config.voyage_max_inputs)
            prepared, tokens = prepare_texts(texts, params)
        except VoyageRequestError as exc:
            return voyage_error(400, str(exc))
        # Up to 1000 vectors of numpy work: off the event loop, so polls and other clients are not stalled.
        response = await asyncio.to_thread(embeddings_body, prepared, tokens, params)
        state.count("voyage_embed_calls")
        state.count("voyage_texts", len(prepared))
        state.count("voyage_tokens", tokens)
        return JSONResponse(response)

    def json_endpoint(
        name: str, answer: Callable[[dict[str, Any]], dict[str, Any]], estimate: Callable[[Any], int]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST handler for a JSON-in/JSON-out Voyage endpoint (rerank, contextualized embeddings)."""

        async def handler(request: Request) -> Response:
            raw = await request.body()
            try:
                body: object = json.loads(raw)
            except ValueError:
                body = None
            if denied := await state.admit("voyage", request, estimate(body)):
                return denied
            if not isinstance(body, dict):
                return voyage_error(400, "Request body must be a JSON object.")
            try:
                response = await asyncio.to_thread(answer, body)
            except VoyageRequestError as exc:
                return voyage_error(400, str(exc))
            state.count(f"voyage_{name}_calls")
            state.count("voyage_tokens", response["usage"]["total_tokens"])
            return JSONResponse(response)

        return handler

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/rerank", json_endpoint("rerank", rerank, _rerank_estimate), methods=["POST"]),
        Route(
            "/v1/contextualizedembeddings",
            json_endpoint("contextualized", contextualized, _context_estimate),
            methods=["POST"],
        ),
        *file_routes(state, files),
        *batch_routes(state, files, batches),
    ]
