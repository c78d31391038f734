"""Building the Anthropic SDK client: key and base URL resolution, retries, and nothing that leaks the key.

Why a module of its own: the SDK import costs seconds (measured ~2.7 s), so it happens here, lazily, only
when a request is about to be made; and the key lookup order (argument, dlt secrets, environment) is
decided once, for the resource and the Dagster layer alike.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from harvest_defs.harvest.claude.settings import SDK_MAX_RETRIES

if TYPE_CHECKING:
    import anthropic

# dlt secrets keys tried in order (secrets.toml: [sources.claude] api_key = "...").
DLT_SECRET_KEYS = ("sources.claude.api_key", "sources.anthropic.api_key")


class MissingApiKeyError(RuntimeError):
    """No key anywhere we look; the message says where to put one (and never echoes a value)."""


def _dlt_secret(keys: tuple[str, ...]) -> str | None:
    try:
        import dlt
    except ImportError:  # pragma: no cover - dlt is a dependency; tolerate its absence anyway
        return None
    for key in keys:
        value: Any
        try:
            value = dlt.secrets.get(key)
        except Exception:  # a missing or unreadable secrets provider is "no secret", not a crash
            value = None
        if value:
            return str(value)
    return None


def resolve_api_key(api_key: str | None) -> str:
    """The argument wins, then dlt secrets (``sources.claude.api_key``), then ``ANTHROPIC_API_KEY``."""
    key = api_key or _dlt_secret(DLT_SECRET_KEYS) or os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise MissingApiKeyError(
            "No Anthropic API key: pass api_key=, set ANTHROPIC_API_KEY, or add "
            "[sources.claude] api_key to .dlt/secrets.toml"
        )
    return key


def resolve_base_url(base_url: str | None) -> str | None:
    """The argument wins, then ``ANTHROPIC_BASE_URL``; None lets the SDK use the real API."""
    return base_url or os.environ.get("ANTHROPIC_BASE_URL") or None


def make_client(
    api_key: str, base_url: str | None, max_retries: int = SDK_MAX_RETRIES
) -> anthropic.Anthropic:
    """An SDK client that retries 408/409/429/5xx itself (honouring ``retry-after``) with backoff."""
    import anthropic

    kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": max_retries}
    if base_url:
        kwargs["base_url"] = base_url
    return anthropic.Anthropic(**kwargs)
