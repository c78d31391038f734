"""Retrieval quality on the sample corpus and the behaviour of each search mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvest_defs.emulator.content import embed_text
from harvest_defs.rag.index import open_index
from harvest_defs.rag.search import exact_search, search, search_connection, vector_search
from harvest_defs_tests.rag.conftest import local_embedder, questions


def _ranks(index: Path, mode: str, subset: list[dict[str, object]], k: int = 5) -> list[int | None]:
    con = open_index(index)
    try:
        ranks: list[int | None] = []
        for q in subset:
            hits = search_connection(con, str(q["question"]), local_embedder(), k, mode)  # type: ignore[arg-type]
            ids = [hit.document_id for hit in hits]
            ranks.append(ids.index(q["document_id"]) + 1 if q["document_id"] in ids else None)
        return ranks
    finally:
        con.close()


def _mrr(ranks: list[int | None]) -> float:
    return sum(1.0 / r for r in ranks if r) / len(ranks)


def test_every_written_question_finds_its_document_in_the_top_3(sample_index: Path) -> None:
    written = questions()
    assert len(written) >= 10
    ranks = _ranks(sample_index, "hybrid", written)
    misses = [q["id"] for q, r in zip(written, ranks, strict=True) if r is None or r > 3]
    assert misses == []


def test_hybrid_beats_vector_only_on_keyword_heavy_questions(sample_index: Path) -> None:
    keyword_heavy = [q for q in questions() if q.get("keyword_heavy")]
    assert len(keyword_heavy) >= 4
    vector, hybrid = (
        _ranks(sample_index, "vector", keyword_heavy),
        _ranks(sample_index, "hybrid", keyword_heavy),
    )
    hit3 = {
        name: sum(1 for r in ranks if r and r <= 3)
        for name, ranks in (("vector", vector), ("hybrid", hybrid))
    }
    assert _mrr(hybrid) > _mrr(vector)
    assert hit3["hybrid"] > hit3["vector"]
    assert hit3["hybrid"] == len(keyword_heavy)


def test_keyword_search_keeps_codes_with_digits(sample_index: Path) -> None:
    hits = search("LF-4471", k=3, mode="keyword", rag_path=sample_index)
    assert hits[0].document_id == "error-codes"
    assert hits[0].keyword_rank == 1 and hits[0].vector_rank is None


def test_hnsw_agrees_with_exact_brute_force(sample_index: Path) -> None:
    """Recall@5 of the HNSW scan against the exact scan, counting ties at the cut-off as matches."""
    con = open_index(sample_index)
    recalls = []
    try:
        for q in questions():
            vector = embed_text(str(q["question"]), 1024)
            approx = vector_search(con, vector, 5)
            exact = exact_search(con, vector, 5)
            cutoff = exact[-1].score - 1e-6
            recalls.append(sum(1 for hit in approx if hit.score >= cutoff) / len(exact))
            assert approx[0].score == pytest.approx(exact[0].score), q["id"]
    finally:
        con.close()
    assert sum(recalls) / len(recalls) >= 0.95


def test_filtered_vector_search_is_exact_and_returns_k_rows(sample_index: Path) -> None:
    allowed = ["on-call-policy", "expense-rules", "onboarding", "glossary"]
    hits = search(
        "How fast must the on-call engineer acknowledge a page?",
        k=3,
        mode="vector",
        filters={"document_id": allowed},
        rag_path=sample_index,
        embed_query=local_embedder(),
    )
    # vss 1.5.5 would push LIMIT into HNSW and filter afterwards (too few rows); the exact scan does not.
    assert len(hits) == 3 and {h.document_id for h in hits} <= set(allowed)
    assert hits[0].document_id == "on-call-policy"
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_hybrid_hits_carry_both_ranks_and_rrf_scores(sample_index: Path) -> None:
    hits = search("on-call stipend per week", k=5, rag_path=sample_index, embed_query=local_embedder())
    top = hits[0]
    assert top.document_id == "on-call-policy"
    assert top.vector_rank == 1 and top.keyword_rank == 1
    assert top.score == pytest.approx(2 / 61)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bad_mode_and_filter_are_rejected(sample_index: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        search("x", mode="semantic", rag_path=sample_index, embed_query=local_embedder())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot filter on 'text'"):
        search("x", mode="keyword", filters={"text": "x"}, rag_path=sample_index)
