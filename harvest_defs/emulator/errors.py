"""Error bodies exactly as each API sends them, so the SDKs raise their documented exception classes."""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def anthropic_error(
    status: int, message: str, error_type: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"type":"error","error":{"type","message"},"request_id"}`` with a ``request-id`` header."""
    request_id = new_request_id()
    body = {
        "type": "error",
        "error": {"type": error_type or ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=status, headers={"request-id": request_id, **(headers or {})})


def voyage_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Voyage errors are ``{"detail": "<string>"}`` (a list detail would crash voyageai's ``str(exc)``)."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
