"""``POST /v1/messages`` (plain or streamed) and ``POST /v1/messages/count_tokens``.

Both validate with the same :func:`anthropic_params.parse_params` and count with the same
:func:`tokens.count_input_tokens`, so ``count_tokens`` answers exactly the ``input_tokens`` a request
without caching is billed (with caching, read + written + uncached sums to it). Admission (auth, faults,
rate limits) comes before validation, as on the real API, then the ``anthropic-version`` check.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.anthropic_generate import generate
from harvest_defs.emulator.anthropic_params import MessageParams, ParamsError, parse_params
from harvest_defs.emulator.anthropic_stream import stream_response
from harvest_defs.emulator.anthropic_wire import api_json, check_version, full_message, is_beta, new_id
from harvest_defs.emulator.errors import anthropic_error
from harvest_defs.emulator.prompt_cache import CacheUsage
from harvest_defs.emulator.state import EmulatorState
from harvest_defs.emulator.tokens import count_input_tokens


def _estimated_tokens(payload: Any) -> int:
    """Tokens the request will bill, for the TPM limiter (0 when the body is not an object)."""
    if not isinstance(payload, dict):
        return 0
    try:
        return count_input_tokens(payload)
    except (TypeError, ValueError, AttributeError):
        return 0


def account(state: EmulatorState, parsed: MessageParams, hit_allowed: bool = True) -> CacheUsage:
    """Input-token usage of one request, split by the prompt cache when it has breakpoints."""
    if parsed.extras is None or not parsed.extras.cached:
        return CacheUsage(parsed.input_tokens)
    usage = state.prompt_cache.account(parsed.model, parsed.extras.params, state.now(), hit_allowed)
    state.count("anthropic_cache_creation_input_tokens", usage.cache_creation_input_tokens)
    state.count("anthropic_cache_read_input_tokens", usage.cache_read_input_tokens)
    return usage


async def _read(state: EmulatorState, request: Request) -> tuple[Any, Response | None]:
    body = await request.body()
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    denied = await state.admit("anthropic", request, _estimated_tokens(payload))
    if denied is not None:
        return None, denied
    version_problem = check_version(request.headers)
    if version_problem is not None:
        return None, version_problem
    if len(body) > state.config.anthropic_messages_max_bytes:
        return None, anthropic_error(
            413, f"Request exceeds the maximum size of {state.config.anthropic_messages_max_bytes} bytes"
        )
    if payload is None:
        return None, anthropic_error(400, "There was an error parsing the body of your request as JSON")
    return payload, None


def routes(state: EmulatorState) -> list[BaseRoute]:
    async def create_message(request: Request) -> Response:
        payload, problem = await _read(state, request)
        if problem is not None:
            return problem
        parsed = parse_params(payload, beta=is_beta(request))
        if isinstance(parsed, ParamsError):
            return anthropic_error(parsed.status, parsed.message, parsed.error_type)
        answer = generate(parsed)
        usage = account(state, parsed)
        state.count("anthropic_messages")
        state.count("anthropic_input_tokens", usage.input_tokens)
        state.count("anthropic_output_tokens", answer.output_tokens)
        message = full_message(
            new_id("msg"),
            parsed.model,
            answer.content,
            answer.stop_reason,
            answer.stop_sequence,
            usage.usage_fields(),
            answer.output_tokens,
            "standard",
        )
        if parsed.stream:
            return stream_response(message)
        return api_json(message)

    async def count_tokens(request: Request) -> Response:
        payload, problem = await _read(state, request)
        if problem is not None:
            return problem
        parsed = parse_params(payload, beta=is_beta(request), count_only=True)
        if isinstance(parsed, ParamsError):
            return anthropic_error(parsed.status, parsed.message, parsed.error_type)
        state.count("anthropic_count_tokens")
        return api_json({"input_tokens": parsed.input_tokens})

    return [
        Route("/v1/messages", create_message, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    ]
