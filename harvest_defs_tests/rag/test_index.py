"""Index build: incremental, dimension-checked, native FLOAT[dim], HNSW graph file + BM25, atomic swap."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from usearch.index import Index

from harvest_defs.emulator.content import embed_text
from harvest_defs.rag import ann
from harvest_defs.rag.index import DimensionMismatchError, build_index, index_meta, indexed_ids, open_index
from harvest_defs.rag.schema import read_meta
from harvest_defs.rag.search import search, set_query_vector, vector_search, vector_search_sql
from harvest_defs_tests.rag.conftest import corpus_documents, local_embedder, rows_for

HARVEST = str(Path(sys.executable).with_name("harvest"))
TEXTS = {f"doc-{i}": f"Document {i} covers topic {i % 4} with code ZX-{7000 + i}." for i in range(12)}


def test_rerun_adds_nothing_and_changes_replace_only_changed_rows(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    first = build_index(rows_for(TEXTS, dim=64), path)
    assert (first.rows_added, first.total_rows, first.rebuilt) == (12, 12, True)
    mtime = path.stat().st_mtime_ns

    again = build_index(rows_for(TEXTS, dim=64), path)
    assert (again.rows_added, again.rows_replaced, again.total_rows, again.rebuilt) == (0, 0, 12, False)
    assert path.stat().st_mtime_ns == mtime  # untouched: not even rewritten

    changed = {**TEXTS, "doc-3": "Rewritten text about something else.", "doc-new": "A brand new document."}
    third = build_index(rows_for(changed, dim=64), path)
    assert (third.rows_added, third.rows_replaced, third.total_rows) == (1, 1, 13)
    con = open_index(path)
    try:
        row = con.execute("SELECT text FROM chunks WHERE chunk_id = 'doc-3'").fetchone()
        assert row == ("Rewritten text about something else.",)
    finally:
        con.close()
    assert indexed_ids(path) == sorted(changed)


def test_prune_removes_chunks_missing_from_the_source(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    build_index(rows_for(TEXTS, dim=32), path)
    kept = dict(list(TEXTS.items())[:5])
    stats = build_index(rows_for(kept, dim=32), path, prune=True)
    assert (stats.rows_removed, stats.total_rows) == (7, 5)
    assert indexed_ids(path) == sorted(kept)


def test_dimension_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    build_index(rows_for(TEXTS, dim=64), path)
    with pytest.raises(DimensionMismatchError, match=r"64-dimensional.*rows have 32"):
        build_index(rows_for({"x": "other model"}, dim=32), path)
    assert indexed_ids(path) == sorted(TEXTS)  # the failed load changed nothing

    ragged = pa.table(
        {
            "chunk_id": ["a", "b"],
            "document_id": ["a", "b"],
            "text": ["a", "b"],
            "embedding": [[1.0, 0.0], [1.0]],
        }
    )
    with pytest.raises(DimensionMismatchError, match="mixed dimensions"):
        build_index(ragged, tmp_path / "other.duckdb")

    con = open_index(path)
    try:
        with pytest.raises(DimensionMismatchError, match="query embedding has 1024 dimensions, the index 64"):
            set_query_vector(con, embed_text("query", 1024))
    finally:
        con.close()


def test_lists_and_relations_are_stored_as_native_float_arrays(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    source = duckdb.connect()
    source.register("src", rows_for(TEXTS, dim=16))
    # A relation whose embedding is a plain DOUBLE[] list, as a JSON-era warehouse would hold it.
    relation = source.sql("SELECT chunk_id, document_id, text, embedding::DOUBLE[] AS embedding FROM src")
    stats = build_index(relation, path)
    assert (stats.dim, stats.rows_added) == (16, 12)
    con = open_index(path)
    try:
        column_type = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'chunks' AND column_name = 'embedding'"
        ).fetchone()
        assert column_type == ("FLOAT[16]",)
        assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    finally:
        con.close()
    assert index_meta(path)["dim"] == "16"


def test_exact_and_filtered_queries_scan_the_table_and_never_take_an_index_scan(sample_index: Path) -> None:
    con = open_index(sample_index)
    try:
        set_query_vector(con, embed_text("on-call stipend", 1024))
        exact = con.execute(f"EXPLAIN {vector_search_sql(5, exact=True)}").fetchall()[0][1]
        filtered = con.execute(f"EXPLAIN {vector_search_sql(5, 'document_id = ?')}", ["glossary"]).fetchall()[
            0
        ][1]
        indexes = con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
    finally:
        con.close()
    assert "HNSW_INDEX_SCAN" not in exact and "SEQ_SCAN" in exact
    assert "HNSW_INDEX_SCAN" not in filtered
    assert indexes == [("chunks_ann_key",)]  # no vss index: the graph lives beside the file


def test_readers_keep_answering_while_the_index_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    documents = corpus_documents()
    names = list(documents)
    build_index(rows_for({n: documents[n] for n in names[:10]}), path)
    errors: list[BaseException] = []
    results: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                hits = search("on-call acknowledge page", k=3, rag_path=path, embed_query=local_embedder())
                results.append(len(hits))
            except BaseException as error:  # any failure is what this test looks for
                errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        previous = 10
        for end in (18, 26, len(names)):
            stats = build_index(rows_for({n: documents[n] for n in names[:end]}), path)
            assert stats.rows_added == end - previous
            previous = end
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert results and all(count == 3 for count in results)
    assert len(indexed_ids(path)) == len(names)
    assert not list(tmp_path.glob(".rag.duckdb.building-*"))  # no temporary files left behind


def test_harvest_search_in_another_process_succeeds_during_rebuilds(tmp_path: Path) -> None:
    """A real `harvest search` process opens the index read-only while this process keeps rebuilding it."""
    path = tmp_path / "rag.duckdb"
    documents = corpus_documents()
    full, part = rows_for(documents), rows_for(dict(list(documents.items())[:20]))
    build_index(full, path)
    stop = threading.Event()
    rebuilds: list[int] = []

    def writer() -> None:
        while not stop.is_set():  # alternate contents so every call really rebuilds and swaps the file
            rebuilds.append(
                build_index(part if len(rebuilds) % 2 == 0 else full, path, prune=True).total_rows
            )

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        outcomes = [
            subprocess.run(
                [
                    HARVEST,
                    "search",
                    "LF-4471 tokenizer quota",
                    "--mode",
                    "keyword",
                    "--json",
                    "--index",
                    str(path),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(1)
        ]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(rebuilds) >= 2
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stderr
        assert json.loads(outcome.stdout)  # hits from either the old or the new file


def test_a_small_change_goes_into_a_copy_of_the_graph_and_search_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "rag.duckdb"
    texts = {f"doc-{i}": f"Document {i} is about subject {i} and term{i * 7} things." for i in range(200)}
    assert build_index(rows_for(texts, dim=64), path).hnsw == "rebuilt"
    con = open_index(path)
    try:
        first_graph = ann.sidecar_of(con, read_meta(con))
        first_keys = dict(con.execute("SELECT chunk_id, ann_key FROM chunks").fetchall())
    finally:
        con.close()
    changed = {k: v for k, v in texts.items() if k not in {"doc-5", "doc-6"}}  # two deleted
    changed["doc-7"] = "Entirely rewritten: zebras gallop across savannah grassland."
    changed["doc-new"] = "Brand new: lighthouse keepers trim lamp wicks nightly."
    stats = build_index(rows_for(changed, dim=64), path, prune=True)
    assert stats.hnsw == "in_place"
    assert (stats.rows_added, stats.rows_replaced, stats.rows_removed, stats.total_rows) == (1, 1, 2, 199)
    embed = local_embedder(64)
    con = open_index(path)
    try:
        for query, expected in (("zebras gallop savannah", "doc-7"), ("lighthouse keepers lamp", "doc-new")):
            set_query_vector(con, embed(query))
            top = con.execute(vector_search_sql(3)).fetchall()
            assert top[0][0] == expected, top
        graph = ann.sidecar_of(con, read_meta(con))
        assert graph is not None and graph != first_graph  # a new file: readers of the old one keep theirs
        keys = dict(con.execute("SELECT chunk_id, ann_key FROM chunks").fetchall())
        for query, expected in (("zebras gallop savannah", "doc-7"), ("lighthouse keepers lamp", "doc-new")):
            hits = vector_search(con, embed(query), 3)
            assert hits[0].chunk_id == expected, hits
            assert keys[expected] in ann.candidates(graph, embed(query), 3)  # found by the updated graph
        updated = Index.restore(str(graph))
        assert updated is not None and len(updated) == 199
        assert not updated.contains(first_keys["doc-5"]) and not updated.contains(first_keys["doc-7"])
        ids = {r[0] for r in con.execute("SELECT chunk_id FROM chunks").fetchall()}
        assert "doc-5" not in ids and "doc-6" not in ids
    finally:
        con.close()
    # A large change (over INCREMENTAL_MAX_SHARE of the rows) rebuilds the graph.
    rewritten = {k: v + " Appendix." for k, v in changed.items()}
    assert build_index(rows_for(rewritten, dim=64), path, prune=True).hnsw == "rebuilt"
