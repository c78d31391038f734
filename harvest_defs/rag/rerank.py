"""Voyage rerank over the fused hybrid candidates: a cross-encoder re-scores (query, passage) pairs.

Why after RRF, not instead of it: a reranker reads every candidate it is given (billed as query tokens ×
candidates + the candidates' tokens), so it is only affordable over a short list; vector + BM25 fusion
is cheap and recalls well at 30-50 candidates, and the reranker then fixes their order — Anthropic's
contextual-retrieval study measured the largest drop in retrieval failures from exactly this last step.

A ``Reranker`` is ``(query, hits, k) -> hits``: ``voyage_reranker`` calls the real-time ``/v1/rerank``
API through the ``voyageai`` SDK (VOYAGE_API_KEY / VOYAGE_BASE_URL from the environment by default);
``score`` on the returned hits is the relevance score, the RRF ranks stay for display.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace

from harvest_defs.rag.search import Hit

Reranker = Callable[[str, Sequence[Hit], int], list[Hit]]
DEFAULT_RERANK_MODEL = "rerank-2.5"
DEFAULT_CANDIDATES = 30


def voyage_reranker(
    model: str = DEFAULT_RERANK_MODEL, *, api_key: str | None = None, base_url: str | None = None
) -> Reranker:
    """A reranker backed by Voyage ``rerank`` (truncation on: an over-long passage is cut, not a 400)."""
    import voyageai

    client = voyageai.Client(
        api_key=api_key or os.environ.get("VOYAGE_API_KEY"),
        base_url=base_url or os.environ.get("VOYAGE_BASE_URL") or None,
        max_retries=3,
    )

    def rerank(query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        result = client.rerank(query, [hit.text for hit in hits], model=model, top_k=min(k, len(hits)))
        return [replace(hits[r.index], score=float(r.relevance_score)) for r in result.results]

    return rerank
