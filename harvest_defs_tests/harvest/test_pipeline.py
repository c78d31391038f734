"""``create_duckdb_pipeline`` keeps vectors native through a real dlt load (append and merge)."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
import numpy as np
import pyarrow as pa
import pytest

from harvest_defs.harvest.pipeline import create_duckdb_pipeline, vector_column_hint


def _table(n: int, dim: int, seed: int) -> pa.Table:
    vectors = np.random.default_rng(seed).random((n, dim), dtype=np.float32)
    return pa.table(
        {
            "id": [f"v{i}" for i in range(n)],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
        }
    )


def test_vectors_load_as_native_float_arrays_and_merge_does_not_duplicate(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    pipeline = create_duckdb_pipeline(
        "vec_test", "ds", destination_path=str(db), pipelines_dir=str(tmp_path / "pipelines")
    )
    first, second = _table(50, 16, 1), _table(50, 16, 2)

    @dlt.resource(
        name="vecs",
        write_disposition="merge",
        primary_key="id",
        columns={"embedding": vector_column_hint(16)},
    )
    def vecs(table: pa.Table) -> pa.Table:
        yield table

    pipeline.run(vecs(first))
    pipeline.run(vecs(second))  # same ids: merge replaces, never duplicates
    with duckdb.connect(str(db), read_only=True) as con:
        types = con.sql("SELECT DISTINCT typeof(embedding) FROM ds.vecs").fetchall()
        column_type = con.sql(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'vecs' AND column_name = 'embedding'"
        ).fetchone()
        stored = con.sql("SELECT embedding FROM ds.vecs WHERE id = 'v7'").fetchone()
        count = con.sql("SELECT count(*) FROM ds.vecs").fetchone()
    assert types == [("FLOAT[16]",)]
    assert column_type == ("FLOAT[16]",)
    assert count == (50,)
    assert stored is not None
    np.testing.assert_allclose(
        np.array(stored[0], dtype=np.float32), second.column("embedding")[7].values.to_numpy()
    )


def test_vector_hint_rejects_nonsense_dimensions() -> None:
    with pytest.raises(ValueError, match="positive"):
        vector_column_hint(0)


def test_a_dataset_named_like_the_database_file_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the catalog from the schema"):
        create_duckdb_pipeline("vectors", "vectors", pipelines_dir=str(tmp_path))
