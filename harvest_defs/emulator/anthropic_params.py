"""Validation of Messages API parameters, shared by ``POST /v1/messages`` and batch requests.

One validator for both so a request that fails in real time fails the same way inside a batch. Errors
say ``"<field>: <problem>"`` like the real API. Each error is either a *schema* error (the body is
malformed: 400 on ``/v1/messages`` and 400 on batch create) or a *model* error (unknown model,
``max_tokens`` above the model's limit), which the real API only finds while processing a batch: there it
becomes that request's ``errored`` result instead of failing the whole create.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harvest_defs.emulator.anthropic_models import canonical_model, max_output_tokens
from harvest_defs.emulator.content import count_tokens

ALLOWED_KEYS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "inference_geo",
    }
)
_ROLES = frozenset({"user", "assistant"})
_REQUIRED = ("model", "max_tokens", "messages")


@dataclass(frozen=True, slots=True)
class ParamsError:
    status: int
    error_type: str
    message: str
    # True for errors the real API reports per request while processing a batch (unknown model, ...).
    model_error: bool = False


@dataclass(frozen=True, slots=True)
class MessageParams:
    model: str
    max_tokens: int
    prompt: str  # text of the last user message: what the emulator "answers"
    input_tokens: int  # billed: count_tokens of the system text plus every message text
    stream: bool


def _schema(message: str) -> ParamsError:
    return ParamsError(400, "invalid_request_error", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _text_of(content: Any, where: str) -> str | ParamsError:
    """A string, or text blocks joined; other block types are accepted and contribute no text."""
    if isinstance(content, str):
        if not content:
            return _schema(f"{where}: text content blocks must be non-empty")
        return content
    if not isinstance(content, list):
        return _schema(f"{where}: Input should be a valid string or a list of content blocks")
    parts: list[str] = []
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return _schema(f"{where}.{j}: Input should be a content block object with a type")
        if block["type"] == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return _schema(f"{where}.{j}.text: Field required")
            if not text:
                return _schema(f"{where}.{j}.text: text content blocks must be non-empty")
            parts.append(text)
    return "\n".join(parts)


def _optional_error(params: dict[str, Any]) -> ParamsError | None:
    temperature = params.get("temperature")
    if temperature is not None:
        if not _is_number(temperature):
            return _schema("temperature: Input should be a valid number")
        if not 0 <= temperature <= 1:
            return _schema("temperature: Input should be between 0 and 1")
    top_p = params.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
        return _schema("top_p: Input should be a number between 0 and 1")
    top_k = params.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        return _schema("top_k: Input should be a non-negative integer")
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        return _schema("stop_sequences: Input should be a list of strings")
    if not isinstance(params.get("stream", False), bool):
        return _schema("stream: Input should be a valid boolean")
    return None


def parse_params(params: Any) -> MessageParams | ParamsError:
    """Validate a Messages request body; schema errors first, then model-dependent ones."""
    if not isinstance(params, dict):
        return _schema("body: Input should be a valid object")
    if not ALLOWED_KEYS.issuperset(params):
        extra = next(key for key in params if key not in ALLOWED_KEYS)
        return _schema(f"{extra}: Extra inputs are not permitted")
    model = params.get("model")
    if model is None:
        return _schema("model: Field required")
    if not isinstance(model, str) or not model:
        return _schema("model: Input should be a valid string")
    max_tokens = params.get("max_tokens")
    if max_tokens is None:
        return _schema("max_tokens: Field required")
    if not _is_int(max_tokens):
        return _schema("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return _schema("max_tokens: Input should be greater than or equal to 1")
    messages = params.get("messages")
    if messages is None:
        return _schema("messages: Field required")
    if not isinstance(messages, list):
        return _schema("messages: Input should be a valid list")
    if not messages:
        return _schema("messages: at least one message is required")

    texts: list[str] = []
    prompt = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _schema(f"messages.{i}: Input should be a valid object")
        role = message.get("role")
        if role not in _ROLES:
            return _schema(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            return _schema(f"messages.{i}.content: Field required")
        text = _text_of(message["content"], f"messages.{i}.content")
        if isinstance(text, ParamsError):
            return text
        texts.append(text)
        if role == "user":
            prompt = text

    stream = False
    if len(params) > len(_REQUIRED):  # optional fields present (most batch requests have none)
        system = params.get("system")
        if system is not None:
            system_text = _text_of(system, "system") if system != "" else ""
            if isinstance(system_text, ParamsError):
                return system_text
            texts.append(system_text)
        problem = _optional_error(params)
        if problem is not None:
            return problem
        stream = params.get("stream") is True

    known = canonical_model(model)
    if known is None:
        return ParamsError(404, "not_found_error", f"model: {model}", model_error=True)
    limit = max_output_tokens(known) or 0
    if max_tokens > limit:
        return ParamsError(
            400,
            "invalid_request_error",
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output tokens "
            f"for {known}",
            model_error=True,
        )
    input_tokens = sum(count_tokens(t) for t in texts)
    return MessageParams(known, max_tokens, prompt, input_tokens, stream)
