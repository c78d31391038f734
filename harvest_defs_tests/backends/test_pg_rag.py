"""The RAG index on Postgres + pgvector: the sample-corpus quality bar of ``rag/test_search.py`` and the
same answers as the DuckDB index, incremental loads, and the one dimension per index rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from harvest_defs.emulator.content import embed_text
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.rag.index import DimensionMismatchError, open_index
from harvest_defs.rag.pg_index import build_pg_index, connect_index, read_meta
from harvest_defs.rag.pg_search import exact_search, vector_search
from harvest_defs.rag.search import search, search_connection
from harvest_defs_tests.rag.conftest import corpus_documents, local_embedder, questions, rows_for


@pytest.fixture(scope="module")
def pg_index(pg_dsn: str) -> Iterator[BackendSettings]:
    """The sample corpus indexed once per module into its own schema (tests here only read it)."""
    settings = BackendSettings("postgres", pg_dsn, f"rag_{uuid.uuid4().hex[:10]}")
    stats = build_pg_index(rows_for(corpus_documents()), settings)
    assert stats.rows_added == stats.total_rows == len(corpus_documents())
    yield settings
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f'DROP SCHEMA "{settings.postgres_schema}" CASCADE')


def _ranks(con: Any, mode: str, subset: list[dict[str, Any]], k: int = 5) -> list[int | None]:
    ranks: list[int | None] = []
    for q in subset:
        ids = [h.document_id for h in search_connection(con, q["question"], local_embedder(), k, mode)]  # type: ignore[arg-type]
        ranks.append(ids.index(q["document_id"]) + 1 if q["document_id"] in ids else None)
    return ranks


def _mrr(ranks: list[int | None]) -> float:
    return sum(1.0 / r for r in ranks if r) / len(ranks)


def test_every_written_question_finds_its_document_in_the_top_3(pg_index: BackendSettings) -> None:
    written = questions()
    with connect_index(pg_index) as con:
        ranks = _ranks(con, "hybrid", written)
    assert [q["id"] for q, r in zip(written, ranks, strict=True) if r is None or r > 3] == []


def test_hybrid_beats_vector_only_on_keyword_heavy_questions(pg_index: BackendSettings) -> None:
    keyword_heavy = [q for q in questions() if q.get("keyword_heavy")]
    with connect_index(pg_index) as con:
        vector, hybrid = _ranks(con, "vector", keyword_heavy), _ranks(con, "hybrid", keyword_heavy)
    assert _mrr(hybrid) > _mrr(vector)
    assert sum(1 for r in hybrid if r and r <= 3) == len(keyword_heavy)


def test_vector_answers_match_the_duckdb_index(pg_index: BackendSettings, tmp_path: Path) -> None:
    """Same rows, same metric: the same top-5 documents in the same order (scores equal to float32)."""
    from harvest_defs.rag.index import build_index

    build_index(rows_for(corpus_documents()), tmp_path / "rag.duckdb")
    duck = open_index(tmp_path / "rag.duckdb")
    try:
        with connect_index(pg_index) as con:
            for q in questions():
                vector = embed_text(q["question"], 1024)
                pg_hits = exact_search(con, vector, 5)
                duck_hits = search_connection(duck, q["question"], local_embedder(), 5, "vector", exact=True)
                assert [h.chunk_id for h in pg_hits] == [h.chunk_id for h in duck_hits], q["id"]
                assert [h.score for h in pg_hits] == pytest.approx([h.score for h in duck_hits], abs=1e-5)
                assert [h.chunk_id for h in vector_search(con, vector, 5)] == [h.chunk_id for h in pg_hits]
    finally:
        duck.close()


def test_keyword_search_keeps_codes_with_digits_and_filters_are_exact(pg_index: BackendSettings) -> None:
    with connect_index(pg_index) as con:
        hits = search_connection(con, "LF-4471", None, 3, "keyword")
        assert hits[0].document_id == "error-codes" and hits[0].keyword_rank == 1
        allowed = ["on-call-policy", "expense-rules", "onboarding", "glossary"]
        vector = embed_text("How fast must the on-call engineer acknowledge a page?", 1024)
        filtered = vector_search(con, vector, 3, {"document_id": allowed})
    assert len(filtered) == 3 and {h.document_id for h in filtered} <= set(allowed)
    assert filtered[0].document_id == "on-call-policy"
    assert filtered == sorted(filtered, key=lambda h: -h.score)


def test_search_reads_the_backend_from_the_environment(
    pg_index: BackendSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_BACKEND", "postgres")
    monkeypatch.setenv("HARVEST_POSTGRES_DSN", pg_index.postgres_dsn or "")
    monkeypatch.setenv("HARVEST_POSTGRES_SCHEMA", pg_index.postgres_schema)
    hits = search("LF-4471", k=3, mode="keyword")
    assert hits[0].document_id == "error-codes"


def test_loads_are_incremental_and_prune_removes_missing_chunks(pg_env: BackendSettings) -> None:
    documents = corpus_documents()
    first = build_pg_index(rows_for(documents), pg_env)
    assert (first.rows_added, first.rows_replaced, first.hnsw) == (len(documents), 0, "in_place")
    again = build_pg_index(rows_for(documents), pg_env)
    assert (again.rows_added, again.rows_replaced, again.rows_removed, again.hnsw) == (0, 0, 0, "none")
    edited = dict(documents)
    name = next(iter(edited))
    edited[name] = edited[name] + "\nAppendix: the quarterly ZX-9001 rotation."
    del edited[list(edited)[-1]]
    changed = build_pg_index(rows_for(edited), pg_env, prune=True)
    assert (changed.rows_added, changed.rows_replaced, changed.rows_removed) == (0, 1, 1)
    assert changed.total_rows == len(documents) - 1
    with connect_index(pg_env) as con:
        assert read_meta(con)["rows"] == str(len(documents) - 1)
        assert search_connection(con, "ZX-9001", None, 1, "keyword")[0].document_id == name
        con.execute("SET enable_seqscan = off")  # 25 rows: the planner would scan; prove the index serves
        plan = "\n".join(
            r[0]
            for r in con.execute(
                "EXPLAIN SELECT chunk_id FROM chunks ORDER BY embedding <=> %s LIMIT 5",
                [np.ones(1024, dtype=np.float32)],
            )
        )
    assert "chunks_embedding_hnsw" in plan


def test_a_second_dimension_is_refused(pg_env: BackendSettings) -> None:
    build_pg_index(rows_for(dict(list(corpus_documents().items())[:2])), pg_env)
    other = rows_for({"x": "some text"}, dim=256)
    with pytest.raises(DimensionMismatchError):
        build_pg_index(other, pg_env)
    with connect_index(pg_env) as con, pytest.raises(DimensionMismatchError):
        vector_search(con, np.ones(256, dtype=np.float32), 3)
    assert isinstance(other, pa.Table)
