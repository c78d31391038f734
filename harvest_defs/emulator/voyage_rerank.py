"""Voyage ``POST /v1/rerank``: documented limits and shape, BM25 scores (lexical, deterministic).

Reference: https://docs.voyageai.com/docs/reranker and https://docs.voyageai.com/reference/reranker-api.
Request ``{query, documents (≤1000), model, top_k?, return_documents? (false), truncation? (true)}``;
response ``{"object": "list", "data": [{"relevance_score", "index", "document"?}], "model",
"usage": {"total_tokens"}}``, sorted by score, best first.

Per-model limits (query tokens / query + one document / total), from the reranker page: rerank-2.5 and
rerank-2.5-lite 8K / 32K / 600K, rerank-2 4K / 16K / 600K, rerank-2-lite 2K / 8K / 600K (older rerank-1 and
rerank-lite-1 are not served). "Total tokens" is documented as ``query tokens × number of documents +
tokens of all documents``, and is also what ``usage.total_tokens`` reports. With ``truncation`` the query
and each document are cut to fit; without it an over-limit request is a 400.

Scores are Okapi BM25 (k1 = 1.2, b = 0.75) of the query's words against each document, with the idf
taken over the request's documents (``ln(1 + (N - n + 0.5) / (n + 0.5))``, always positive), squashed into
[0, 1) as ``s / (s + 1)`` so they look like relevance scores. The document sharing the query's rarer
words ranks first, which is what the RAG tests rely on; ties keep document order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from harvest_defs.emulator.content import CHARS_PER_TOKEN, count_tokens, words
from harvest_defs.emulator.voyage_embed import VoyageRequestError

MAX_DOCUMENTS = 1000
BM25_K1, BM25_B = 1.2, 0.75


@dataclass(frozen=True)
class RerankModel:
    name: str
    query_tokens: int
    pair_tokens: int
    total_tokens: int


RERANK_MODELS: dict[str, RerankModel] = {
    m.name: m
    for m in [
        RerankModel("rerank-2.5", 8_000, 32_000, 600_000),
        RerankModel("rerank-2.5-lite", 8_000, 32_000, 600_000),
        RerankModel("rerank-2", 4_000, 16_000, 600_000),
        RerankModel("rerank-2-lite", 2_000, 8_000, 600_000),
    ]
}


@dataclass(frozen=True)
class RerankParams:
    model: RerankModel
    top_k: int | None
    return_documents: bool
    truncation: bool


def parse_rerank_params(body: dict[str, Any]) -> RerankParams:
    """Model options of a rerank request (also the Batch API's ``request_params``)."""
    name = body.get("model")
    if name is None:
        raise VoyageRequestError("Field 'model' is required.")
    model = RERANK_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        supported = ", ".join(RERANK_MODELS)
        raise VoyageRequestError(f"Model {name} is not supported. Supported rerank models are: {supported}.")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise VoyageRequestError("Argument 'top_k' must be a positive integer.")
    flags = {}
    for flag, default in (("return_documents", False), ("truncation", True)):
        value = body.get(flag)
        if value is None:
            value = default
        if not isinstance(value, bool):
            raise VoyageRequestError(f"Argument '{flag}' must be a boolean.")
        flags[flag] = value
    return RerankParams(model, top_k, flags["return_documents"], flags["truncation"])


def _cut(text: str, tokens: int) -> str:
    return text[: max(0, tokens) * CHARS_PER_TOKEN]


def prepare_rerank(body: dict[str, Any], params: RerankParams) -> tuple[str, list[str], int]:
    """Validated (query, documents, total tokens) after truncation; raises VoyageRequestError."""
    query, documents = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not query:
        raise VoyageRequestError("Field 'query' must be a non-empty string.")
    if not isinstance(documents, list) or not documents:
        raise VoyageRequestError("Field 'documents' must be a non-empty list of strings.")
    if len(documents) > MAX_DOCUMENTS:
        raise VoyageRequestError(
            f"The number of documents must be at most {MAX_DOCUMENTS}; it is {len(documents)}."
        )
    if not all(isinstance(d, str) for d in documents):
        raise VoyageRequestError("Every document must be a string.")
    model = params.model
    query_tokens = count_tokens(query)
    if query_tokens > model.query_tokens:
        if not params.truncation:
            raise VoyageRequestError(
                f"The query has {query_tokens} tokens, more than the {model.query_tokens} allowed for "
                f"model '{model.name}'. Set truncation=True or shorten the query."
            )
        query = _cut(query, model.query_tokens)
        query_tokens = count_tokens(query)
    prepared: list[str] = []
    total = 0
    for i, document in enumerate(documents):
        tokens = count_tokens(document)
        if query_tokens + tokens > model.pair_tokens:
            if not params.truncation:
                raise VoyageRequestError(
                    f"The query and document at index {i} have {query_tokens + tokens} tokens together, more "
                    f"than the context length of {model.pair_tokens} for model '{model.name}'. "
                    "Set truncation=True or shorten the input."
                )
            document = _cut(document, model.pair_tokens - query_tokens)
            tokens = count_tokens(document)
        prepared.append(document)
        total += query_tokens + tokens
    if total > model.total_tokens:
        raise VoyageRequestError(
            f"Request to model '{model.name}' failed. The total number of tokens (query tokens x number of "
            f"documents + document tokens) is {total}, more than the {model.total_tokens} allowed."
        )
    return query, prepared, total


def bm25_scores(query: str, documents: list[str]) -> list[float]:
    """Okapi BM25 of ``query`` against each document, idf over ``documents`` (see the module docstring)."""
    bags = [Counter(words(d)) for d in documents]
    lengths = [sum(bag.values()) for bag in bags]
    average = (sum(lengths) / len(lengths)) if lengths and sum(lengths) else 1.0
    n = len(documents)
    terms = set(words(query))
    idf = {}
    for term in terms:
        containing = sum(1 for bag in bags if term in bag)
        idf[term] = math.log(1.0 + (n - containing + 0.5) / (containing + 0.5))
    scores = []
    for bag, length in zip(bags, lengths, strict=True):
        score = 0.0
        for term in terms:
            tf = bag.get(term, 0)
            if tf:
                norm = tf + BM25_K1 * (1.0 - BM25_B + BM25_B * length / average)
                score += idf[term] * tf * (BM25_K1 + 1.0) / norm
        scores.append(score)
    return scores


def rerank_body(query: str, documents: list[str], tokens: int, params: RerankParams) -> dict[str, Any]:
    """The ``/v1/rerank`` response for prepared inputs (``document`` is echoed as scored, i.e. truncated)."""
    scores = bm25_scores(query, documents)
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    if params.top_k is not None:
        order = order[: params.top_k]
    data: list[dict[str, Any]] = []
    for i in order:
        row: dict[str, Any] = {"relevance_score": round(scores[i] / (scores[i] + 1.0), 8), "index": i}
        if params.return_documents:
            row["document"] = documents[i]
        data.append(row)
    return {"object": "list", "data": data, "model": params.model.name, "usage": {"total_tokens": tokens}}


def rerank(body: dict[str, Any]) -> dict[str, Any]:
    """Validate and answer one rerank request body (raises VoyageRequestError)."""
    params = parse_rerank_params(body)
    query, documents, tokens = prepare_rerank(body, params)
    return rerank_body(query, documents, tokens, params)
