"""Checks of the optional Messages parameters the API documents as constrained (400 when violated).

Split from ``anthropic_params`` so the common path (model, max_tokens, messages) stays small. Each check
returns ``"<field>: <problem>"`` like the real API, or None. Sources:
https://docs.claude.com/en/api/messages (parameter reference),
https://docs.claude.com/en/docs/build-with-claude/extended-thinking (``budget_tokens`` ≥ 1024 and below
``max_tokens``), https://docs.claude.com/en/docs/build-with-claude/vision (image sources and media types),
https://docs.claude.com/en/docs/build-with-claude/prompt-caching (``cache_control``),
https://docs.claude.com/en/docs/build-with-claude/structured-outputs (``output_config.format``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harvest_defs.emulator.prompt_cache import TTL_SECONDS
from harvest_defs.emulator.structured import schema_error
from harvest_defs.emulator.tokens import decode_base64

MIN_THINKING_BUDGET = 1024
SERVICE_TIERS = ("auto", "standard_only")
SPEEDS = ("standard", "fast")
EFFORTS = ("low", "medium", "high", "xhigh", "max")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_CHOICES = ("auto", "any", "tool", "none")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
METADATA_USER_ID_MAX = 256


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cache_control_error(control: Any, where: str) -> str | None:
    if control is None:
        return None
    if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
        return f"{where}.type: Input should be 'ephemeral'"
    extra = next((k for k in control if k not in ("type", "ttl")), None)
    if extra is not None:
        return f"{where}.{extra}: Extra inputs are not permitted"
    ttl = control.get("ttl")
    if ttl is not None and ttl not in TTL_SECONDS:
        return f"{where}.ttl: Input should be '5m' or '1h'"
    return None


def thinking_error(thinking: Any, max_tokens: int) -> str | None:
    if thinking is None:
        return None
    if not isinstance(thinking, Mapping):
        return "thinking: Input should be a valid dictionary"
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            return "thinking.enabled.budget_tokens: Field required"
        if not _is_int(budget):
            return "thinking.enabled.budget_tokens: Input should be a valid integer"
        if budget < MIN_THINKING_BUDGET:
            return (
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{MIN_THINKING_BUDGET}"
            )
        if budget >= max_tokens:
            return "max_tokens: must be greater than thinking.budget_tokens"
    elif kind not in ("disabled", "adaptive"):
        return "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'"
    display = thinking.get("display")
    if display is not None and display not in ("summarized", "omitted"):
        return "thinking.display: Input should be 'summarized' or 'omitted'"
    return None


def metadata_error(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return "metadata: Input should be a valid dictionary"
    extra = next((k for k in metadata if k != "user_id"), None)
    if extra is not None:
        return f"metadata.{extra}: Extra inputs are not permitted"
    user_id = metadata.get("user_id")
    if user_id is not None and (not isinstance(user_id, str) or len(user_id) > METADATA_USER_ID_MAX):
        return f"metadata.user_id: Input should be a string of at most {METADATA_USER_ID_MAX} characters"
    return None


def tools_error(tools: Any, tool_choice: Any) -> str | None:
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                return f"tools.{i}: Input should be a valid dictionary"
            name = tool.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                return f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), Mapping):
                return f"tools.{i}.custom.input_schema: Field required"
            problem = cache_control_error(tool.get("cache_control"), f"tools.{i}.cache_control")
            if problem:
                return problem
            names.append(name)
    if tool_choice is None:
        return None
    if not isinstance(tool_choice, Mapping) or tool_choice.get("type") not in TOOL_CHOICES:
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    if not names:
        return "tool_choice: tool_choice may only be specified while providing tools."
    if tool_choice["type"] == "tool":
        name = tool_choice.get("name")
        if not isinstance(name, str):
            return "tool_choice.tool.name: Field required"
        if name not in names:
            return f"tool_choice.tool.name: Tool '{name}' not found in provided tools"
    return None


def output_config_error(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        return "output_config: Input should be a valid dictionary"
    effort = config.get("effort")
    if effort is not None and effort not in EFFORTS:
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return "output_config.format.type: Input should be 'json_schema'"
    if "schema" not in fmt:
        return "output_config.format.schema: Field required"
    return schema_error(fmt.get("schema"))


def image_error(block: Mapping[str, Any], where: str) -> str | None:
    source = block.get("source")
    if not isinstance(source, Mapping):
        return f"{where}.source: Field required"
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in IMAGE_MEDIA_TYPES:
            return f"{where}.source.base64.media_type: Input should be one of {', '.join(IMAGE_MEDIA_TYPES)}"
        if decode_base64(source.get("data")) is None:
            return f"{where}.source.base64.data: The image data is not valid base64"
    elif kind == "url":
        if not isinstance(source.get("url"), str):
            return f"{where}.source.url.url: Field required"
    elif kind != "file":
        return f"{where}.source.type: Input should be 'base64', 'url' or 'file'"
    return None


def block_error(block: Mapping[str, Any], where: str) -> str | None:
    """Per-block checks (images, cache_control) for message and system content blocks."""
    problem = cache_control_error(block.get("cache_control"), f"{where}.cache_control")
    if problem is None and block.get("type") == "image":
        problem = image_error(block, where)
    return problem


def optional_error(params: Mapping[str, Any], max_tokens: int) -> str | None:
    """All documented constraints on the optional top-level parameters, first failure wins."""
    tier = params.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        return "service_tier: Input should be 'auto' or 'standard_only'"
    speed = params.get("speed")
    if speed is not None and speed not in SPEEDS:
        return "speed: Input should be 'standard' or 'fast'"
    diagnostics = params.get("diagnostics")
    if diagnostics is not None and not isinstance(diagnostics, Mapping):
        return "diagnostics: Input should be a valid dictionary"
    for check in (
        lambda: thinking_error(params.get("thinking"), max_tokens),
        lambda: metadata_error(params.get("metadata")),
        lambda: tools_error(params.get("tools"), params.get("tool_choice")),
        lambda: output_config_error(params.get("output_config")),
        lambda: cache_control_error(params.get("cache_control"), "cache_control"),
    ):
        problem = check()
        if problem is not None:
            return problem
    thinking, choice = params.get("thinking"), params.get("tool_choice")
    if (
        isinstance(thinking, Mapping)
        and thinking.get("type") in ("enabled", "adaptive")
        and isinstance(choice, Mapping)
        and choice.get("type") in ("any", "tool")
    ):
        # "Tool choice ... any or tool ... not supported with extended thinking" (extended-thinking page).
        return "tool_choice: Thinking may not be enabled when tool_choice forces tool use."
    return None
