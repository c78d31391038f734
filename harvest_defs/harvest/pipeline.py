"""``create_duckdb_pipeline``: a dlt pipeline whose DuckDB destination keeps vectors native.

dlt's DuckDB destination stores nested columns as JSON text (measured: 3x slower loads, 5x larger files,
and every query must parse it back). A column hinted with ``x-duckdb-type`` gets that DuckDB type instead
(e.g. ``FLOAT[1024]``) in the main *and* the merge staging table. ALPRD compression is disabled because
on embedding floats it made files 1.6x larger and inserts slower (``reference/dlt_vectors_measured.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.typing import PreparedTableSchema
from dlt.common.schema.typing import TColumnSchema
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.duckdb.factory import DuckDbTypeMapper

DUCKDB_TYPE_HINT = "x-duckdb-type"


class VectorDuckDbTypeMapper(DuckDbTypeMapper):
    """Honours the ``x-duckdb-type`` column hint (same pattern as dlt's ``x-postgres-geometry``)."""

    def to_destination_type(self, column: TColumnSchema, table: PreparedTableSchema) -> str:
        native = column.get(DUCKDB_TYPE_HINT)
        if native:
            return str(native)
        return super().to_destination_type(column, table)


def vector_column_hint(dim: int) -> dict[str, Any]:
    """The column hint that makes an Arrow ``FixedSizeList<float32>[dim]`` a native ``FLOAT[dim]``."""
    if dim <= 0:
        raise ValueError(f"vector dimension must be positive, got {dim}")
    return {"data_type": "json", DUCKDB_TYPE_HINT: f"FLOAT[{dim}]", "nullable": True}


def duckdb_destination(path: str) -> Any:
    """A DuckDB destination at ``path`` with the vector type mapper and ALPRD off."""
    credentials = DuckDbCredentials(path)
    credentials.global_config = {"disabled_compression_methods": "alprd"}
    return dlt.destinations.duckdb(credentials, type_mapper=VectorDuckDbTypeMapper)


def create_duckdb_pipeline(
    pipeline_name: str,
    dataset_name: str,
    destination_path: str | None = None,
    pipelines_dir: str | None = None,
    **pipeline_kwargs: Any,
) -> dlt.Pipeline:
    """The seed guide's helper, fixed: vectors stay ``FLOAT[n]`` and the file path is explicit.

    ``destination_path`` defaults to ``<pipeline_name>.duckdb`` in the working directory (dlt's own
    default); ``pipelines_dir`` defaults to dlt's (``~/.dlt/pipelines``).
    """
    path = destination_path or f"{pipeline_name}.duckdb"
    if Path(path).stem == dataset_name:
        # DuckDB names the attached catalog after the file; a schema of the same name makes every
        # qualified reference ambiguous, and dlt only finds out at load time — after the API was paid.
        raise ValueError(
            f"dataset_name {dataset_name!r} equals the DuckDB file's name ({Path(path).name}): DuckDB "
            "cannot tell the catalog from the schema. Choose another dataset_name or destination_path."
        )
    if pipelines_dir is not None:
        pipeline_kwargs["pipelines_dir"] = pipelines_dir
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=duckdb_destination(path),
        dataset_name=dataset_name,
        **pipeline_kwargs,
    )
