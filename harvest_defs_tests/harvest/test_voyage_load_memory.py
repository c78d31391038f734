"""Bounded load memory for embeddings: what the fix guarantees, checked against real parts.

- ``unique_embeddings`` (the promise behind the ``deduplicated`` merge): for any sequence of tables, each
  id comes out once, the first occurrence wins, order is kept (hypothesis, real SQLite ``SeenIds``);
- a real dlt pipeline from ``create_duckdb_pipeline`` loads with DuckDB's ``memory_limit`` set (and can
  opt out), and loading ``voyage_embeddings`` merges without dlt's ``ROW_NUMBER()`` dedup pass (the
  window that held every vector at once), while repeated ids still end up as one row each.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dlt
import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest_defs.harvest.dedup import MERGE_DISPOSITION
from harvest_defs.harvest.pipeline import LOAD_MEMORY_LIMIT, create_duckdb_pipeline, vector_column_hint
from harvest_defs.harvest.voyage.arrow import embeddings_table
from harvest_defs.harvest.voyage.resource import voyage_embeddings_batch
from harvest_defs.harvest.voyage.unique import unique_embeddings

DIM = 8


def _table(ids: list[str], tag: str) -> pa.Table:
    n = len(ids)
    vectors = np.arange(n * DIM, dtype=np.float32).reshape(n, DIM)
    return embeddings_table(
        ids=ids,
        texts=[f"{tag}:{i}" for i in ids],
        text_hashes=[f"h{i}" for i in ids],
        vectors=vectors,
        tokens=[1] * n,
        model="voyage-3.5",
        dim=DIM,
        input_type="document",
        processing_time_ms=0.0,
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([f"e{i}" for i in range(12)]), max_size=8), max_size=6))
def test_any_sequence_of_tables_yields_each_id_once_first_occurrence_wins(batches: list[list[str]]) -> None:
    tables = [_table(ids, f"t{n}") for n, ids in enumerate(batches)]
    with tempfile.TemporaryDirectory() as scratch:
        out = list(unique_embeddings(iter(tables), scratch))
    ids = [i for t in out for i in t.column("embedding_id").to_pylist()]
    texts = [x for t in out for x in t.column("text").to_pylist()]
    expected: dict[str, str] = {}
    for n, batch in enumerate(batches):
        for i in batch:
            expected.setdefault(i, f"t{n}:{i}")
    assert ids == list(expected)  # once each, in first-seen order
    assert texts == list(expected.values())  # the first occurrence's row
    assert all(t.num_rows for t in out)  # no empty tables handed to dlt


def test_the_voyage_resource_declares_its_merge_deduplicated() -> None:
    """What makes dlt skip the window: nothing is iterated here (no request is sent)."""
    resource = voyage_embeddings_batch(["a text"], api_key="pa-unused", base_url="http://127.0.0.1:9")
    schema = resource.compute_table_schema()
    assert schema["write_disposition"] == "merge"
    assert schema.get("x-stage-data-deduplicated") is True


def _merge_sql(pipeline: dlt.Pipeline) -> str:
    """The SQL of the merge job(s) dlt ran in the last load package (kept in ``completed_jobs``)."""
    package = pipeline.get_load_package_info(pipeline.last_trace.last_load_info.loads_ids[-1])
    paths = [Path(job.file_path) for job in package.jobs["completed_jobs"]]
    return "\n".join(p.read_text() for p in paths if p.suffix == ".sql")


def test_the_load_runs_under_a_memory_limit_and_merges_vectors_without_a_dedup_window(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    pipeline = create_duckdb_pipeline(
        "mem", "ds", destination_path=str(db), pipelines_dir=str(tmp_path / "pipes")
    )
    with pipeline.sql_client() as client:
        limit, order = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order')"
        )[0]
    unlimited = create_duckdb_pipeline(
        "nomem",
        "ds",
        destination_path=str(tmp_path / "u.duckdb"),
        pipelines_dir=str(tmp_path / "pipes"),
        memory_limit=None,
    )
    with unlimited.sql_client() as client:
        default_limit = client.execute_sql("SELECT current_setting('memory_limit')")[0][0]
    assert LOAD_MEMORY_LIMIT == "512MB" and limit == "488.2 MiB"  # DuckDB reports MiB
    assert order is False
    assert default_limit != limit  # opting out leaves DuckDB's own default (80% of RAM)

    stream = [_table(["a", "b", "c"], "first"), _table(["b", "d"], "again"), _table(["e", "a"], "late")]
    resource = dlt.resource(
        unique_embeddings(iter(stream), tmp_path / "scratch"),
        name="voyage_embeddings",
        write_disposition=MERGE_DISPOSITION,
        primary_key="embedding_id",
        columns={"embedding": vector_column_hint(DIM)},
    )
    pipeline.run(resource)
    pipeline.run(  # a second load merges into the existing rows: still one per id
        dlt.resource(
            [_table(["a", "f"], "second run")],
            name="voyage_embeddings",
            write_disposition=MERGE_DISPOSITION,
            primary_key="embedding_id",
            columns={"embedding": vector_column_hint(DIM)},
        )
    )
    sql = _merge_sql(pipeline)
    assert "DELETE FROM" in sql and "ROW_NUMBER" not in sql.upper()
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT embedding_id, text FROM ds.voyage_embeddings ORDER BY 1").fetchall()
        kind = con.execute("SELECT typeof(embedding) FROM ds.voyage_embeddings LIMIT 1").fetchone()
    assert rows == [
        ("a", "second run:a"),
        ("b", "first:b"),
        ("c", "first:c"),
        ("d", "again:d"),
        ("e", "late:e"),
        ("f", "second run:f"),
    ]
    assert kind == (f"FLOAT[{DIM}]",)
