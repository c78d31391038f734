"""Wire details shared by the Anthropic routes: ids, RFC 3339 timestamps, Message bodies, JSON responses.

Kept apart from the handlers so the real-time and batch paths build byte-for-byte the same Message
shape (the SDK validates it strictly in tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from harvest_defs.emulator.errors import anthropic_error, new_request_id

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = 22


def base62(data: bytes, length: int = _ID_CHARS) -> str:
    value = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        out.append(_BASE62[rem])
    return "".join(out)


def new_id(prefix: str) -> str:
    """``msg_01…`` / ``msgbatch_01…``: the real APIs' shape (prefix, ``01``, 22 base62 characters)."""
    return f"{prefix}_01{base62(os.urandom(17))}"


def rfc3339(epoch_seconds: float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_body(
    message_id: str,
    model: str,
    text: str,
    stop_reason: str,
    input_tokens: int,
    output_tokens: int,
    service_tier: str,
) -> dict[str, Any]:
    """A text-only Message with no cache activity (the plain path)."""
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    content = [{"type": "text", "text": text}]
    return full_message(message_id, model, content, stop_reason, None, usage, output_tokens, service_tier)


def full_message(
    message_id: str,
    model: str,
    content: list[dict[str, Any]],
    stop_reason: str,
    stop_sequence: str | None,
    usage: dict[str, Any],
    output_tokens: int,
    service_tier: str,
) -> dict[str, Any]:
    """A Message with any content blocks and cache-aware usage (``usage`` from ``CacheUsage``)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {**usage, "output_tokens": output_tokens, "service_tier": service_tier},
    }


def check_version(headers: Mapping[str, str]) -> JSONResponse | None:
    """The API requires an ``anthropic-version`` header on every request (any value is accepted here:
    the SDKs send 2023-06-01 or newer dates); https://docs.claude.com/en/api/versioning."""
    if headers.get("anthropic-version"):
        return None
    return anthropic_error(400, "anthropic-version: header is required")


def is_beta(request: Request) -> bool:
    """The beta surface: ``?beta=true`` (what the SDK's beta suites send) or an ``anthropic-beta`` header.

    Beta requests accept the beta Messages parameter set (``anthropic.types.beta``); anthropic 2.13's
    ``client.beta.*`` marks them with the ``anthropic-beta`` header when ``betas=`` is given.
    """
    return request.query_params.get("beta", "").lower() == "true" or bool(
        request.headers.get("anthropic-beta")
    )


def api_json(body: Any, status_code: int = 200) -> JSONResponse:
    """A JSON response with the ``request-id`` header every real Anthropic response carries."""
    return JSONResponse(body, status_code=status_code, headers={"request-id": new_request_id()})
