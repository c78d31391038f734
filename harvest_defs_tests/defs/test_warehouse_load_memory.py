"""Bounded memory in the Dagster layer's warehouse loads (issue 16), against a real DuckDB warehouse.

- every load of the chain, the components and ``rag_answers`` declares its merge deduplicated, so dlt
  runs no ``ROW_NUMBER()`` window over the vectors (the window that cannot spill);
- the warehouse pipeline loads under DuckDB's ``memory_limit`` (512 MB, or the store's setting);
- the guarantees stay: one row per key, the first-yielded (freshest) row wins, batches are collected
  newest first, ``_deleted`` rows hard-delete, a second load replaces rows (latest load wins).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from harvest_defs.defs.assets.chunks import chunk_embed_source
from harvest_defs.defs.assets.voyage import voyage_embed_source
from harvest_defs.defs.batches import EndedBatch, newest_first
from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.unique_merge import load_unique, unique_resource
from harvest_defs.defs.voyage_rows import VOYAGE_HINTS, deletions, tag
from harvest_defs.harvest.pipeline import vector_column_hint
from harvest_defs.harvest.voyage.arrow import embeddings_table

DIM = 8


def _vectors(ids: list[str], label: str, partition: str = "p") -> pa.Table:
    n = len(ids)
    table = embeddings_table(
        ids=ids,
        texts=[f"{label}:{i}" for i in ids],
        text_hashes=[f"h{i}" for i in ids],
        vectors=np.full((n, DIM), 0.5, dtype=np.float32),
        tokens=[1] * n,
        model="voyage-3.5",
        dim=DIM,
        input_type="document",
        processing_time_ms=0.0,
    )
    return tag(table, partition)


def _merge_sql(pipeline: object) -> str:
    trace = pipeline.last_trace  # type: ignore[attr-defined]
    package = pipeline.get_load_package_info(trace.last_load_info.loads_ids[-1])  # type: ignore[attr-defined]
    paths = [Path(job.file_path) for job in package.jobs["completed_jobs"]]
    return "\n".join(p.read_text() for p in paths if p.suffix == ".sql")


def _rows(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT embedding_id, text FROM harvest.vectors").fetchall())


def test_the_chain_and_component_resources_declare_their_merges_deduplicated() -> None:
    """What lets dlt skip its dedup window; nothing is iterated (no request, no load)."""
    schemas = [
        voyage_embed_source().resources["voyage_embeddings"].compute_table_schema(),
        chunk_embed_source().resources["chunk_embeddings"].compute_table_schema(),
        unique_resource(iter(()), name="rag_answers", primary_key="custom_id").compute_table_schema(),
    ]
    for schema in schemas:
        assert schema["write_disposition"] == "merge"
        assert schema.get("x-stage-data-deduplicated") is True, schema["name"]


def test_a_warehouse_load_is_bounded_unique_and_latest_wins(tmp_path: Path) -> None:
    store = HarvestStoreResource(home=str(tmp_path / "home"))
    pipeline = store.warehouse().pipeline("limit_probe")
    with pipeline.sql_client() as client:
        [(limit,)] = client.execute_sql("SELECT current_setting('memory_limit')")
    assert limit == "488.2 MiB"  # 512MB, as DuckDB reports it

    # Two "batches" answered b; the newest is collected first, so its row is the one kept.
    old, new = EndedBatch("old", "p", created_at=1.0), EndedBatch("new", "p", created_at=2.0)
    assert [b.batch_id for b in newest_first([old, new])] == ["new", "old"]
    by_batch = {"new": _vectors(["b", "c"], "new"), "old": _vectors(["a", "b"], "old")}
    stream = [by_batch[b.batch_id] for b in newest_first([old, new])]
    stream.append(deletions(["gone"], DIM, "p"))
    columns = {**VOYAGE_HINTS, "embedding": vector_column_hint(DIM)}
    load_unique(store, "vectors", [_vectors(["gone"], "before")], name="vectors", primary_key="embedding_id",
                columns=columns)  # fmt: skip
    assert _rows(store.warehouse_path) == {"gone": "before:gone"}

    load_unique(store, "vectors", stream, name="vectors", primary_key="embedding_id", columns=columns)
    assert _rows(store.warehouse_path) == {"a": "old:a", "b": "new:b", "c": "new:c"}  # gone: deleted
    sql = _merge_sql(store.warehouse().pipeline("vectors"))
    assert "DELETE FROM" in sql and "ROW_NUMBER" not in sql.upper()

    load_unique(store, "vectors", [_vectors(["a"], "rerun")], name="vectors", primary_key="embedding_id",
                columns=columns)  # fmt: skip
    assert _rows(store.warehouse_path) == {"a": "rerun:a", "b": "new:b", "c": "new:c"}
    assert not list((store.raw_dir / "scratch").glob("seen_ids_*"))  # the seen-ids file is gone


@pytest.mark.parametrize(("setting", "expected"), [("2GB", "1.8 GiB"), ("default", None)])
def test_the_warehouse_memory_limit_is_a_store_setting(
    tmp_path: Path, setting: str, expected: str | None
) -> None:
    store = HarvestStoreResource(home=str(tmp_path / "home"), warehouse_memory_limit=setting)
    with store.warehouse().pipeline("limit_probe").sql_client() as client:
        [(limit,)] = client.execute_sql("SELECT current_setting('memory_limit')")
    if expected is None:
        assert limit not in ("488.2 MiB", "1.8 GiB")  # DuckDB's own default (80% of RAM)
    else:
        assert limit == expected
