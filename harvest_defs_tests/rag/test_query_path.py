"""The graph query's DuckDB side: exact float32 distances and the table's text, one thread for point
queries and every core for scans, the dimension check without a metadata read per query."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvest_defs.emulator.content import embed_text
from harvest_defs.rag import ann
from harvest_defs.rag.index import DimensionMismatchError, build_index, open_index
from harvest_defs.rag.schema import CHUNKS_TABLE
from harvest_defs.rag.search import exact_search, keyword_search, vector_search
from harvest_defs.rag.threads import POINT_QUERY_THREADS, all_cores, current_threads
from harvest_defs_tests.rag.conftest import rows_for

DIM = 16
TEXTS = {
    f"doc-{i}": f"Query path document {i} about subject {i % 9}, detail {i * 7 % 13}." for i in range(120)
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("query_path") / "rag.duckdb"
    build_index(rows_for(TEXTS, dim=DIM), path)
    return path


@pytest.fixture(scope="module")
def reader(index: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_index(index)
    yield con
    con.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 12))
def test_for_any_query_the_graph_hits_carry_the_tables_exact_distance_and_text(
    reader: duckdb.DuckDBPyConnection, seed: int, k: int
) -> None:
    """Whatever the graph picks, DuckDB ranks it: every hit's score is the exact scan's float32 score for
    that row (bit for bit), its text is the row's text, the order is the exact order, and the top hit is
    the exact top hit (120 rows: the graph's >= 20 candidates always hold the nearest)."""
    query = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    got = vector_search(reader, query, k)
    exact = {h.chunk_id: h for h in exact_search(reader, query, len(TEXTS))}
    texts = dict(reader.execute(f"SELECT chunk_id, text FROM {CHUNKS_TABLE}").fetchall())
    assert len(got) == k
    assert [h.score for h in got] == [exact[h.chunk_id].score for h in got]
    assert all(h.text == texts[h.chunk_id] == TEXTS[h.chunk_id] for h in got)
    assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
    assert got[0].chunk_id == next(iter(exact))


def test_a_reader_answers_point_queries_on_one_thread_and_scans_on_every_core(index: Path) -> None:
    con = open_index(index)
    try:
        assert current_threads(con) == POINT_QUERY_THREADS
        with all_cores(con):
            assert current_threads(con) == (os.cpu_count() or 1)
        assert current_threads(con) == POINT_QUERY_THREADS
        query = embed_text(TEXTS["doc-5"], DIM)
        assert vector_search(con, query, 3)[0].chunk_id == "doc-5"
        assert exact_search(con, query, 3)[0].chunk_id == "doc-5"
        assert keyword_search(con, "subject 5 detail", 3)
        assert current_threads(con) == POINT_QUERY_THREADS  # each scan gave its cores back
    finally:
        con.close()


def test_a_query_of_the_wrong_dimension_fails_on_every_call_of_a_reader(index: Path) -> None:
    """The dimension is read once per read-only connection, and still checked on every query."""
    con = open_index(index)
    try:
        assert vector_search(con, embed_text("warm", DIM), 1)
        for _ in range(2):
            with pytest.raises(DimensionMismatchError, match=f"has {DIM * 2} dimensions, the index {DIM}"):
                vector_search(con, np.ones(DIM * 2, dtype=np.float32), 1)
        assert ann.graph_for(con) is not None
    finally:
        con.close()
