"""``POST /v1/messages`` (non-streaming): validate like the real API, answer with an extractive summary."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.anthropic_params import ParamsError, parse_params
from harvest_defs.emulator.anthropic_wire import api_json, message_body, new_id
from harvest_defs.emulator.content import count_tokens, summarize
from harvest_defs.emulator.errors import anthropic_error
from harvest_defs.emulator.state import EmulatorState


def _estimated_tokens(payload: Any) -> int:
    """Tokens the request will bill, for the TPM limiter (0 when the body will be rejected anyway)."""
    if not isinstance(payload, dict):
        return 0
    parsed = parse_params(payload)
    return 0 if isinstance(parsed, ParamsError) else parsed.input_tokens


def routes(state: EmulatorState) -> list[BaseRoute]:
    async def create_message(request: Request) -> Response:
        body = await request.body()
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        # Admit first (auth, faults, rate limits come before validation, as on the real API).
        denied = await state.admit("anthropic", request, _estimated_tokens(payload))
        if denied is not None:
            return denied
        if len(body) > state.config.anthropic_messages_max_bytes:
            return anthropic_error(
                413, f"Request exceeds the maximum size of {state.config.anthropic_messages_max_bytes} bytes"
            )
        if payload is None:
            return anthropic_error(400, "There was an error parsing the body of your request as JSON")
        parsed = parse_params(payload)
        if isinstance(parsed, ParamsError):
            return anthropic_error(parsed.status, parsed.message, parsed.error_type)
        if parsed.stream:
            return anthropic_error(400, "stream: streaming is not supported by the emulator")
        text, stop_reason = summarize(parsed.prompt, parsed.max_tokens)
        output_tokens = count_tokens(text)
        state.count("anthropic_messages")
        state.count("anthropic_input_tokens", parsed.input_tokens)
        state.count("anthropic_output_tokens", output_tokens)
        return api_json(
            message_body(
                new_id("msg"), parsed.model, text, stop_reason, parsed.input_tokens, output_tokens, "standard"
            )
        )

    return [Route("/v1/messages", create_message, methods=["POST"])]
