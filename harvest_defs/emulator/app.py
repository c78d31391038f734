"""The ASGI app: both APIs' routes plus the ``/_emulator`` admin endpoints tests use."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harvest_defs.emulator import anthropic_routes, voyage_routes
from harvest_defs.emulator.errors import anthropic_error, voyage_error
from harvest_defs.emulator.state import EmulatorState

VOYAGE_PREFIXES = ("/v1/embeddings", "/v1/files", "/v1/batches", "/v1/rerank", "/v1/contextualizedembeddings")


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods in each API's own error shape, never Starlette's plain text.

    Anthropic errors are always ``{"type":"error","error":{...}}`` (https://docs.claude.com/en/api/errors);
    Voyage's are ``{"detail": "..."}``; the admin endpoints use the Voyage shape too.
    """
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    path = request.url.path
    if status == 405:
        message = f"Method {request.method} is not allowed for {path}"
    elif status == 404:
        message = f"Not found: {request.method} {path}"
    else:
        message = exc.detail if isinstance(exc, HTTPException) else "Internal server error"
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if path.startswith(VOYAGE_PREFIXES) or path.startswith("/_emulator"):
        return voyage_error(status, message, headers=headers)
    error_type = "not_found_error" if status == 404 else "invalid_request_error" if status < 500 else None
    return anthropic_error(status, message, error_type, headers=headers)


def build_app(state: EmulatorState) -> Starlette:
    async def stats(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse(dict(state.stats))

    async def get_config(request: Request) -> JSONResponse:
        return JSONResponse(state.config.to_dict())

    async def set_config(request: Request) -> JSONResponse:
        try:
            state.config.update(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(state.config.to_dict())

    async def reset(request: Request) -> JSONResponse:
        state.reset()
        return JSONResponse({"reset": True})

    admin = [
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/config", get_config, methods=["GET"]),
        Route("/_emulator/config", set_config, methods=["POST"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
    app = Starlette(
        routes=[*admin, *anthropic_routes.routes(state), *voyage_routes.routes(state)],
        # Exception: an emulator bug still answers in the API's error shape (500), not Starlette's text.
        exception_handlers={404: http_error, 405: http_error, Exception: http_error},
    )
    app.state.emulator = state
    return app
