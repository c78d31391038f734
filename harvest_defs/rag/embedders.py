"""Query embedders: ``text -> np.ndarray`` callables that search uses to place a question in vector space.

Queries must be embedded by the same model and dimension as the indexed chunks, with Voyage's
``input_type="query"`` (documents were embedded as ``document``): that asymmetry is how Voyage models are
trained. The SDK is imported inside the function so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

QueryEmbedder = Callable[[str], np.ndarray]
DEFAULT_VOYAGE_MODEL = "voyage-3.5"
# Models whose output_dimension can be chosen (the others have one fixed size; see api_contracts.md).
_FLEXIBLE_DIMENSION_PREFIXES = (
    "voyage-4",
    "voyage-3.5",
    "voyage-3-large",
    "voyage-code-3",
    "voyage-context-3",
)


def voyage_query_embedder(
    model: str = DEFAULT_VOYAGE_MODEL,
    dimensions: int | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
) -> QueryEmbedder:
    """Embed queries with the Voyage API (VOYAGE_API_KEY / VOYAGE_BASE_URL from the env by default)."""
    import voyageai

    client = voyageai.Client(
        api_key=api_key or os.environ.get("VOYAGE_API_KEY"),
        base_url=base_url or os.environ.get("VOYAGE_BASE_URL") or None,
        max_retries=3,
    )
    output_dimension = dimensions if dimensions and model.startswith(_FLEXIBLE_DIMENSION_PREFIXES) else None

    def embed(text: str) -> np.ndarray:
        result = client.embed([text], model=model, input_type="query", output_dimension=output_dimension)
        return np.asarray(result.embeddings[0], dtype=np.float32)

    return embed


def index_query_embedder(meta: dict[str, str]) -> QueryEmbedder:
    """A Voyage embedder matching the index's model and dimension (from ``index_meta``)."""
    models = [m for m in meta.get("models", "").split(",") if m]
    if len(models) > 1:
        raise ValueError(f"index mixes embedding models {models}: pass embed_query explicitly")
    dim = int(meta["dim"]) if meta.get("dim") else None
    return voyage_query_embedder(models[0] if models else DEFAULT_VOYAGE_MODEL, dim)
