"""Voyage ``POST /v1/rerank``: documented limits and shape, pairwise lexical relevance (deterministic).

Reference: https://docs.voyageai.com/docs/reranker and https://docs.voyageai.com/reference/reranker-api.
Request ``{query, documents (≤1000), model, top_k?, return_documents? (false), truncation? (true)}``;
response ``{"object": "list", "data": [{"relevance_score", "index", "document"?}], "model",
"usage": {"total_tokens"}}``, sorted by score, best first.

Per-model limits (query tokens / query + one document / total), from the reranker page: rerank-2.5 and
rerank-2.5-lite 8K / 32K / 600K, rerank-2 4K / 16K / 600K, rerank-2-lite 2K / 8K / 600K (older rerank-1 and
rerank-lite-1 are not served). "Total tokens" is documented as ``query tokens × number of documents +
tokens of all documents``, and is also what ``usage.total_tokens`` reports. With ``truncation`` the query
and each document are cut to fit; without it an over-limit request is a 400.

Scores imitate what the reranker page says a reranker is — a cross-encoder that "jointly process[es] a
pair of query and document" (https://docs.voyageai.com/docs/reranker) — lexically: each document is scored
against the query *alone*, never against the other documents of the request, by how much of the question
it covers. The query's distinct content words (stop words dropped, a light suffix folding so "events" meets
"event" and "purged" meets "purge") are the question's concepts; a document scores 0.7 × the fraction of
them it contains anywhere plus 0.3 × the fraction its best sentence holds together (a passage that answers
says the question's words in one place), times 0.95, so scores lie in [0, 0.95]. Repeating one query word
earns nothing more. Why not BM25 over the request's documents (what this was): its idf comes from the
candidates, so the words the answer shares with its near-misses (in the retrieval eval "raw events ...
days", in nearly every candidate) weigh ~0, and what is left is the term frequency of the entity the
question names, highest in a passage that only repeats it — the opposite of a relevance model, which
reads each pair alone. Still lexical: it cannot tell a paraphrase ("kept" vs "keep") or a negation,
which a real reranker can. Ties keep document order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harvest_defs.emulator.content import CHARS_PER_TOKEN, count_tokens, words
from harvest_defs.emulator.voyage_embed import VoyageRequestError

MAX_DOCUMENTS = 1000
COVERAGE_WEIGHT = 0.7  # the rest goes to the best sentence's coverage
RELEVANCE_CEILING = 0.95  # a lexical match is never "certain"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SENTENCE_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # a query of stop words only still has words


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


def _fold(word: str) -> str:
    """A light suffix folding (not a stemmer): plural, -ed, -ing and a final e, on words of 4+ letters."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)] + keep
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _terms(text: str) -> set[str]:
    return {_fold(w) for w in words(text)}


def relevance_scores(query: str, documents: list[str]) -> list[float]:
    """Each document's relevance to ``query`` alone, in [0, 0.95] (see the module docstring)."""
    asked = _terms(query) or {w.lower() for w in _SENTENCE_WORD.findall(query)}
    if not asked:
        return [0.0] * len(documents)
    scores = []
    for document in documents:
        covered = len(asked & _terms(document)) / len(asked)
        best = max((len(asked & _terms(s)) for s in _SENTENCE.split(document)), default=0) / len(asked)
        scores.append(RELEVANCE_CEILING * (COVERAGE_WEIGHT * covered + (1.0 - COVERAGE_WEIGHT) * best))
    return scores


def rerank_body(query: str, documents: list[str], tokens: int, params: RerankParams) -> dict[str, Any]:
    """The ``/v1/rerank`` response for prepared inputs (``document`` is echoed as scored, i.e. truncated)."""
    scores = relevance_scores(query, documents)
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    if params.top_k is not None:
        order = order[: params.top_k]
    data: list[dict[str, Any]] = []
    for i in order:
        row: dict[str, Any] = {"relevance_score": round(scores[i], 8), "index": i}
        if params.return_documents:
            row["document"] = documents[i]
        data.append(row)
    return {"object": "list", "data": data, "model": params.model.name, "usage": {"total_tokens": tokens}}


def rerank(body: dict[str, Any]) -> dict[str, Any]:
    """Validate and answer one rerank request body (raises VoyageRequestError)."""
    params = parse_rerank_params(body)
    query, documents, tokens = prepare_rerank(body, params)
    return rerank_body(query, documents, tokens, params)
