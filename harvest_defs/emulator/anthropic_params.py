"""Validation of Messages API parameters, shared by ``POST /v1/messages`` and batch requests.

One validator for both so a request that fails in real time fails the same way inside a batch. Errors
say ``"<field>: <problem>"`` like the real API. Each error is either a *schema* error (the body is
malformed: 400 on ``/v1/messages`` and 400 on batch create) or a *model* error (unknown model,
``max_tokens`` above the model's limit), which the real API only finds while processing a batch: there it
becomes that request's ``errored`` result instead of failing the whole create.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harvest_defs.emulator.anthropic_models import canonical_model, max_output_tokens
from harvest_defs.emulator.anthropic_validate import block_error, optional_error
from harvest_defs.emulator.content import count_tokens
from harvest_defs.emulator.prompt_cache import breakpoint_error
from harvest_defs.emulator.tokens import count_input_tokens

_COMMON_KEYS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "output_config",
        "speed",
        "mcp_servers",
        "context_management",
    }
)
# /v1/messages (and batch params): the SDK's MessageCreateParams plus the sampling knobs the SDK sends via
# extra_body (temperature, top_p, top_k are documented on https://docs.claude.com/en/api/messages).
ALLOWED_KEYS = _COMMON_KEYS | frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "stream",
        "service_tier",
        "container",
        "inference_geo",
        "diagnostics",
    }
)
# The beta surface (``?beta=true``, anthropic.types.beta.MessageCreateParams) documents a few more.
BETA_KEYS = ALLOWED_KEYS | frozenset(
    {"betas", "billing_policy", "compaction", "fallback_credit_token", "fallbacks", "thread"}
)
# POST /v1/messages/count_tokens (anthropic.types.MessageCountTokensParams).
COUNT_KEYS = _COMMON_KEYS
BETA_COUNT_KEYS = COUNT_KEYS | frozenset({"betas", "compaction", "thread"})
_ROLES = frozenset({"user", "assistant"})
_REQUIRED = frozenset({"model", "max_tokens", "messages"})
_PLAIN_KEYS = frozenset({*_REQUIRED, "system", "temperature", "top_p", "top_k", "stream", "metadata"})
_KEY_SETS = {
    (False, False): ALLOWED_KEYS,
    (False, True): BETA_KEYS,
    (True, False): COUNT_KEYS,
    (True, True): BETA_COUNT_KEYS,
}
NO_MAX_TOKENS = 1 << 62  # count_tokens has no max_tokens; thinking budgets are then unbounded


@dataclass(frozen=True, slots=True)
class ParamsError:
    status: int
    error_type: str
    message: str
    # True for errors the real API reports per request while processing a batch (unknown model, ...).
    model_error: bool = False


@dataclass(frozen=True, slots=True)
class Extras:
    """What a request asks for beyond "answer the last user message": kept only when present.

    ``params`` is the raw body (for prompt-cache accounting and schemas); plain text requests — most of a
    100,000-request batch — have no Extras at all and take the fast path.
    """

    params: Mapping[str, Any]
    stop_sequences: tuple[str, ...] = ()
    thinking: Mapping[str, Any] | None = None
    forced_tool: Mapping[str, Any] | None = None
    output_schema: Any = None
    has_output_schema: bool = False
    cached: bool = False


@dataclass(frozen=True, slots=True)
class MessageParams:
    model: str
    max_tokens: int
    prompt: str  # text of the last user message: what the emulator "answers"
    input_tokens: int  # billed before caching: tokens.count_input_tokens(params)
    stream: bool
    extras: Extras | None = None


def _schema(message: str) -> ParamsError:
    return ParamsError(400, "invalid_request_error", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _text_of(content: Any, where: str) -> tuple[str, bool] | ParamsError:
    """(text of the text blocks joined, whether any block is not plain text or has cache_control)."""
    if isinstance(content, str):
        if not content:
            return _schema(f"{where}: text content blocks must be non-empty")
        return content, False
    if not isinstance(content, list):
        return _schema(f"{where}: Input should be a valid string or a list of content blocks")
    parts: list[str] = []
    rich = False
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
        if block["type"] != "text" or "cache_control" in block:
            rich = True
            problem = block_error(block, f"{where}.{j}")
            if problem is not None:
                return _schema(problem)
    return "\n".join(parts), rich


def _sampling_error(params: Mapping[str, Any]) -> ParamsError | None:
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


def _extras(params: Mapping[str, Any], rich: bool) -> Extras | None:
    stops = tuple(s for s in params.get("stop_sequences") or () if s)
    thinking = params.get("thinking")
    if not (isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")):
        thinking = None
    forced = None
    choice = params.get("tool_choice")
    tools = params.get("tools") or []
    if isinstance(choice, Mapping) and choice.get("type") in ("tool", "any") and tools:
        wanted = choice.get("name") if choice["type"] == "tool" else None
        forced = next((t for t in tools if wanted is None or t.get("name") == wanted), None)
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    has_schema = isinstance(fmt, Mapping)
    cached = rich or "cache_control" in params or bool(tools)
    if not (stops or thinking or forced or has_schema or cached):
        return None
    return Extras(
        params=params,
        stop_sequences=stops,
        thinking=thinking,
        forced_tool=forced,
        output_schema=fmt.get("schema") if isinstance(fmt, Mapping) else None,
        has_output_schema=has_schema,
        cached=cached,
    )


def parse_params(params: Any, beta: bool = False, count_only: bool = False) -> MessageParams | ParamsError:
    """Validate a Messages (or count_tokens) body; schema errors first, then model-dependent ones."""
    if not isinstance(params, dict):
        return _schema("body: Input should be a valid object")
    allowed = _KEY_SETS[(count_only, beta)]
    if not allowed.issuperset(params):
        extra = next(key for key in params if key not in allowed)
        return _schema(f"{extra}: Extra inputs are not permitted")
    model = params.get("model")
    if model is None:
        return _schema("model: Field required")
    if not isinstance(model, str) or not model:
        return _schema("model: Input should be a valid string")
    max_tokens = params.get("max_tokens", NO_MAX_TOKENS if count_only else None)
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

    prompt = ""
    rich = False
    plain_tokens = 0  # count_input_tokens' fast path, summed on the way (most batch requests)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _schema(f"messages.{i}: Input should be a valid object")
        role = message.get("role")
        if role not in _ROLES:
            return _schema(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            return _schema(f"messages.{i}.content: Field required")
        parsed = _text_of(message["content"], f"messages.{i}.content")
        if isinstance(parsed, ParamsError):
            return parsed
        rich = rich or parsed[1]
        if role == "user":
            prompt = parsed[0]
        content = message["content"]
        plain_tokens = (
            plain_tokens + count_tokens(content) if isinstance(content, str) and plain_tokens >= 0 else -1
        )

    stream = False
    extras = None
    only_required = _REQUIRED.issuperset(params)  # most batch requests: no optional fields
    if not only_required:
        system = params.get("system")
        if system is not None and system != "":
            parsed_system = _text_of(system, "system")
            if isinstance(parsed_system, ParamsError):
                return parsed_system
            rich = rich or parsed_system[1]
        problem = _sampling_error(params)
        if problem is not None:
            return problem
        if not _PLAIN_KEYS.issuperset(params) or rich:
            message = optional_error(params, max_tokens)
            if message is None and (rich or "cache_control" in params or "tools" in params):
                message = breakpoint_error(params)
            if message is not None:
                return _schema(message)
        else:
            metadata_problem = optional_error({"metadata": params.get("metadata")}, max_tokens)
            if metadata_problem is not None:
                return _schema(metadata_problem)
        stream = params.get("stream") is True
        extras = _extras(params, rich)
    elif rich:
        message = breakpoint_error(params)
        if message is not None:
            return _schema(message)
        extras = _extras(params, rich)

    known = canonical_model(model)
    if known is None:
        return ParamsError(404, "not_found_error", f"model: {model}", model_error=True)
    limit = max_output_tokens(known) or 0
    if max_tokens > limit and not count_only:
        return ParamsError(
            400,
            "invalid_request_error",
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output tokens "
            f"for {known}",
            model_error=True,
        )
    plain = plain_tokens >= 0 and only_required  # then plain_tokens is what count_input_tokens returns
    input_tokens = plain_tokens if plain else count_input_tokens(params)
    return MessageParams(known, max_tokens, prompt, input_tokens, stream, extras)
