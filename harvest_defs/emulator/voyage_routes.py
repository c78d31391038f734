"""Voyage routes: real-time ``POST /v1/embeddings`` plus the Files and Batch APIs (api_contracts.md §2, §3).

The embeddings handler is thin: admission (auth, faults, RPM/TPM charged with the request's tokens) comes
first, as on the real API, then validation and the deterministic vectors from :mod:`voyage_embed`. The
Files and Batch stores are cleared on emulator reset.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.errors import voyage_error
from harvest_defs.emulator.state import EmulatorState
from harvest_defs.emulator.voyage_batches import BatchStore, batch_routes
from harvest_defs.emulator.voyage_embed import (
    VoyageRequestError,
    embeddings_body,
    estimate_tokens,
    parse_inputs,
    parse_params,
    prepare_texts,
)
from harvest_defs.emulator.voyage_files import FileStore, file_routes


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

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        *file_routes(state, files),
        *batch_routes(state, files, batches),
    ]
