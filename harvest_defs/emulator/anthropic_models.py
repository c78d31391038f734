"""The Claude models the emulator knows, with each one's maximum output tokens.

The real API answers an unknown model with 404 ``not_found_error`` (``"model: <name>"``) and a too-large
``max_tokens`` with 400, so the emulator needs a table to behave the same: a typo in a model name must
fail in tests exactly as it would in production. Names are the current aliases, their dated snapshots,
the legacy models the seed guide uses, and every literal in anthropic 2.13's ``ModelParam``.
"""

from __future__ import annotations

_OPUS_4 = 32_000
_MODERN = 64_000
_CLAUDE_3_5 = 8_192
_CLAUDE_3 = 4_096

KNOWN_MODELS: dict[str, int] = {
    # Claude 4.5 family (aliases and dated snapshots).
    "claude-opus-4-5": _MODERN,
    "claude-opus-4-5-20251101": _MODERN,
    "claude-sonnet-4-5": _MODERN,
    "claude-sonnet-4-5-20250929": _MODERN,
    "claude-haiku-4-5": _MODERN,
    "claude-haiku-4-5-20251001": _MODERN,
    # Claude 4 / 4.1.
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-1-20250805": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4-20250514": _OPUS_4,
    "claude-sonnet-4-0": _MODERN,
    "claude-sonnet-4-20250514": _MODERN,
    # Claude 3.x (legacy; the seed guide's examples use these).
    "claude-3-7-sonnet-latest": _MODERN,
    "claude-3-7-sonnet-20250219": _MODERN,
    "claude-3-5-haiku-latest": _CLAUDE_3_5,
    "claude-3-5-haiku-20241022": _CLAUDE_3_5,
    "claude-3-5-sonnet-latest": _CLAUDE_3_5,
    "claude-3-5-sonnet-20241022": _CLAUDE_3_5,
    "claude-3-5-sonnet-20240620": _CLAUDE_3_5,
    "claude-3-opus-latest": _CLAUDE_3,
    "claude-3-opus-20240229": _CLAUDE_3,
    "claude-3-haiku-20240307": _CLAUDE_3,
    # Newer names listed by the anthropic 2.13 SDK (types/model_param.py).
    "claude-opus-4-6": _MODERN,
    "claude-sonnet-4-6": _MODERN,
    "claude-opus-4-7": _MODERN,
    "claude-opus-4-8": _MODERN,
    "claude-mythos-preview": _MODERN,
    "claude-opus-5": _MODERN,
    "claude-sonnet-5": _MODERN,
    "claude-fable-5": _MODERN,
    "claude-mythos-5": _MODERN,
    "claude-fable-5-1": _MODERN,
    "claude-mythos-5-1": _MODERN,
    "claude-opus-5-5": _MODERN,
    "claude-sonnet-5-5": _MODERN,
    "claude-haiku-5-5": _MODERN,
    "claude-fable-5-2": _MODERN,
    "claude-mythos-5-2": _MODERN,
}

# One shared string object per model name, so 100,000 stored batch requests do not hold 100,000 copies.
_CANONICAL: dict[str, str] = {name: name for name in KNOWN_MODELS}


def canonical_model(name: str) -> str | None:
    """The interned known name, or None for a model the API would answer with 404."""
    return _CANONICAL.get(name)


def max_output_tokens(name: str) -> int | None:
    return KNOWN_MODELS.get(name)
