"""Credentials and SDK clients, resolved the same way for real-time and Batch API use.

``api_key`` None → dlt secrets (``sources.voyage.api_key`` / ``voyage.api_key``) → ``VOYAGE_API_KEY``;
``base_url`` None → ``VOYAGE_BASE_URL`` → the SDK's default. The key never appears in a repr, log line or
exception raised here. SDKs are imported inside the functions: importing the package stays cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BASE_URL = "https://api.voyageai.com/v1"
_SECRET_KEYS = ("sources.voyage.api_key", "voyage.api_key", "sources.voyage_api_key", "voyage_api_key")


@dataclass(frozen=True)
class VoyageCredentials:
    api_key: str = field(repr=False)
    base_url: str | None

    def __repr__(self) -> str:
        return f"VoyageCredentials(api_key=***, base_url={self.base_url!r})"


def _dlt_secret() -> str | None:
    try:
        import dlt

        for key in _SECRET_KEYS:
            value: Any = dlt.secrets.get(key)
            if value:
                return str(value)
    except Exception:  # no dlt config available (e.g. unusual working dir): fall back to the env
        return None
    return None


def resolve_credentials(api_key: str | None = None, base_url: str | None = None) -> VoyageCredentials:
    key = api_key or _dlt_secret() or os.environ.get("VOYAGE_API_KEY")
    if not key:
        raise ValueError(
            "No Voyage API key: pass api_key=, set VOYAGE_API_KEY, "
            "or [sources.voyage] api_key in .dlt/secrets.toml"
        )
    url = base_url or os.environ.get("VOYAGE_BASE_URL") or None
    return VoyageCredentials(api_key=key, base_url=url.rstrip("/") if url else None)


def embed_request_kwargs(creds: VoyageCredentials, timeout: float | None) -> dict[str, Any]:
    """Keyword arguments for ``voyageai.Embedding.acreate`` (the SDK's own transport and errors).

    We call the SDK's API resource rather than ``AsyncClient.embed`` so that we can ask for base64 ourselves
    and decode with ``np.frombuffer`` (the client decodes every vector into a Python list) and so that
    retries and ``retry-after`` are ours (the SDK ignores ``retry-after``).
    """
    return {
        "api_key": creds.api_key,
        "base_url": creds.base_url or DEFAULT_BASE_URL,
        "request_timeout": timeout,
    }


def openai_batch_client(creds: VoyageCredentials, max_retries: int = 5) -> Any:
    """The OpenAI SDK pointed at Voyage's OpenAI-compatible Files/Batches API (voyageai has none)."""
    import openai

    return openai.OpenAI(
        api_key=creds.api_key, base_url=creds.base_url or DEFAULT_BASE_URL, max_retries=max_retries
    )
