"""rag_index over a real warehouse file: native FLOAT[dim] rows in, an incremental index out, checked fresh.

The warehouse table is written here the way dlt leaves it (schema ``harvest``, native ``FLOAT[dim]``),
with the emulator's own embedding function, so this runs before the harvesters are wired.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection
from harvest_defs.emulator.content import embed_text
from harvest_defs.rag.index import indexed_ids

DIM = 1024
SUMMARIES = {
    "ducks": "Ducks are waterfowl that paddle on ponds.",
    "rust": "Rust is a systems language with a borrow checker.",
    "tea": "Green tea is steamed to stop oxidation.",
}


def _write_warehouse(path: Path, summaries: dict[str, str]) -> None:
    vectors = pa.array(
        [embed_text(text, DIM).astype("float32") for text in summaries.values()],
        type=pa.list_(pa.float32(), DIM),
    )
    rows = pa.table(
        {
            "embedding_id": list(summaries),
            "text": list(summaries.values()),
            "model": ["voyage-3.5"] * len(summaries),
            "text_hash": [str(hash(t)) for t in summaries.values()],
            "embedding": vectors,
        }
    )
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS harvest")
    con.execute("DROP TABLE IF EXISTS harvest.voyage_embeddings")
    con.register("rows", rows)
    con.execute(
        f"CREATE TABLE harvest.voyage_embeddings AS "
        f"SELECT embedding_id, text, model, text_hash, embedding::FLOAT[{DIM}] AS embedding FROM rows"
    )
    con.close()


def _materialize_index(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, object]:
    result = materialize_selection(defs, instance, ["rag_index"])
    [event] = result.get_asset_materialization_events()
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"index_fresh": True}
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_rag_index_is_incremental_and_fresh(
    corpus: Path, harvest_home: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    harvest_home.mkdir(parents=True)
    _write_warehouse(harvest_home / "warehouse.duckdb", SUMMARIES)
    defs = build_defs(corpus)
    # rag_index needs only the store; no API is called, but the bound resources resolve their EnvVars.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "unused")
    monkeypatch.setenv("VOYAGE_API_KEY", "unused")

    first = _materialize_index(defs, instance)
    assert first["dagster/row_count"] == 3 and first["rows_added"] == 3 and first["dimension"] == DIM
    # The rows came from the warehouse through a spool file (never one Arrow table), removed afterwards;
    # the build's time and memory per step are in the metadata.
    assert first["source_rows"] == 3 and not list(harvest_home.glob(".rag.duckdb.source-*"))
    assert isinstance(first["phases_s"], dict) and "graph" in first["phases_s"]
    assert isinstance(first["peak_rss_mb"], float) and first["peak_rss_mb"] > 0
    again = _materialize_index(defs, instance)
    assert again["rows_added"] == 0 and again["rebuilt"] is False

    _write_warehouse(harvest_home / "warehouse.duckdb", {**SUMMARIES, "coffee": "Espresso is pressurized."})
    grown = _materialize_index(defs, instance)
    assert grown["rows_added"] == 1 and grown["dagster/row_count"] == 4
    assert indexed_ids(harvest_home / "rag.duckdb") == ["coffee", "ducks", "rust", "tea"]


def test_chunks_carry_the_document_text_behind_each_summary(
    corpus: Path, harvest_home: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vector is the summary's; the text answers need (and BM25 searches) includes the document."""
    from harvest_defs.defs.assets.documents import SNAPSHOT_COLUMNS, write_snapshot
    from harvest_defs.rag.schema import CHUNKS_TABLE

    harvest_home.mkdir(parents=True)
    _write_warehouse(harvest_home / "warehouse.duckdb", SUMMARIES)
    document = dict.fromkeys(SNAPSHOT_COLUMNS, "x") | {
        "document_id": "ducks",
        "text": "Ducks are waterfowl. A mallard drake has a green head.",
        "text_hash": "h1",
    }
    write_snapshot(harvest_home / "documents" / "birds.parquet", [document])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "unused")
    monkeypatch.setenv("VOYAGE_API_KEY", "unused")
    _materialize_index(build_defs(corpus), instance)
    with duckdb.connect(str(harvest_home / "rag.duckdb"), read_only=True) as con:
        texts = dict(con.execute(f"SELECT chunk_id, text FROM {CHUNKS_TABLE}").fetchall())
    assert texts["ducks"].startswith(SUMMARIES["ducks"]) and "green head" in texts["ducks"]
    assert texts["rust"] == SUMMARIES["rust"]  # no snapshot: the summary alone
