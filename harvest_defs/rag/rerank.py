"""Voyage rerank over the fused hybrid candidates: a cross-encoder re-scores (query, passage) pairs.

Why after RRF, not instead of it: a reranker reads every candidate it is given (billed as query tokens ×
candidates + the candidates' tokens), so it is only affordable over a short list; vector + BM25 fusion
is cheap and recalls well at 30-50 candidates, and the reranker then fixes their order — Anthropic's
contextual-retrieval study measured the largest drop in retrieval failures from exactly this last step.

A ``Reranker`` is ``(query, hits, k) -> hits``: ``voyage_reranker`` calls the real-time ``/v1/rerank``
API through the ``voyageai`` SDK (VOYAGE_API_KEY / VOYAGE_BASE_URL from the environment by default);
``score`` on the returned hits is the relevance score, the RRF ranks stay for display.

``RerankCache`` wraps a reranker for repeated question sets (``rag_answers``): an unchanged question over
unchanged candidates is answered from disk, so a re-materialization costs no rerank request.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

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


class RerankCache:
    """A ``Reranker`` that pays once per (model, query, candidates, k): results kept as JSON files.

    Why files, not the warehouse: the cache is read while the asset holds no DuckDB lock, and a result is
    small (indices and scores). The key covers every candidate's id and text, so a grown index or an
    edited passage asks again; ``calls`` / ``hits`` say what a run paid for.
    """

    def __init__(self, inner: Reranker, cache_dir: Path | str, model: str) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.model = model
        self.calls = 0
        self.hits = 0

    def key(self, query: str, hits: Sequence[Hit], k: int) -> str:
        """The request's identity: model, question, k and every candidate's id and text."""
        raw = json.dumps(
            [self.model, query, k, [(hit.chunk_id, hit.text) for hit in hits]], ensure_ascii=False
        )
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def load(self, key: str, hits: Sequence[Hit]) -> list[Hit] | None:
        """The cached ranking of ``hits`` (relevance scores), or None when this request was never answered."""
        path = self.cache_dir / f"{key}.json"
        if not path.exists():
            return None
        order = json.loads(path.read_text(encoding="utf-8"))
        return [replace(hits[index], score=float(score)) for index, score in order]

    def store(self, key: str, order: Sequence[tuple[int, float]]) -> None:
        """Keep one answer: ``(candidate index, relevance score)`` best first; atomic, never half a file."""
        path = self.cache_dir / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps([list(pair) for pair in order]), encoding="utf-8")
        os.replace(tmp, path)

    def __call__(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        key = self.key(query, hits, k)
        cached = self.load(key, hits)
        if cached is not None:
            self.hits += 1
            return cached
        self.calls += 1
        ranked = self.inner(query, hits, k)
        index_of = {hit.chunk_id: n for n, hit in enumerate(hits)}  # a candidate list holds each id once
        self.store(key, [(index_of[hit.chunk_id], hit.score) for hit in ranked])
        return ranked
