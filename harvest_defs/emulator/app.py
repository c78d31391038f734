"""The ASGI app: both APIs' routes plus the ``/_emulator`` admin endpoints tests use."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harvest_defs.emulator import anthropic_routes, voyage_routes
from harvest_defs.emulator.state import EmulatorState


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
    app = Starlette(routes=[*admin, *anthropic_routes.routes(state), *voyage_routes.routes(state)])
    app.state.emulator = state
    return app
