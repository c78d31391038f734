"""``create_duckdb_pipeline``: a dlt pipeline whose DuckDB destination keeps vectors native.

dlt's DuckDB destination stores nested columns as JSON text (measured: 3x slower loads, 5x larger files,
and every query must parse it back). A column hinted with ``x-duckdb-type`` gets that DuckDB type instead
(e.g. ``FLOAT[1024]``) in the main *and* the merge staging table. ALPRD compression is disabled because
on embedding floats it made files 1.6x larger and inserts slower (``reference/dlt_vectors_measured.md``).

Load memory: DuckDB's default ``memory_limit`` is 80% of the machine, and it uses it: dlt's load of N
rows (``INSERT ... FROM read_parquet`` into the staging table, then the merge's DELETE/INSERT) kept
~1.2 GB per 50k 1024-d vectors in DuckDB's buffer pool (benchmarks/scale_memory.py). With a fixed
``memory_limit`` DuckDB writes through to the database file and spills to ``<file>.tmp`` instead, so the
load's peak stays flat in N. ``preserve_insertion_order=false`` lets the inserts stream without keeping
row order (dlt's merge does not need it; DuckDB's docs name it as the first knob for INSERT memory).
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


# What dlt's load connection may hold in DuckDB's buffer pool. 512 MB: loading N 1024-d vectors then adds
# ~0.5 GB over the extract whatever N (741 / 889 / 938 MB peak at 50k / 100k / 200k, 1.64 GB for 1M texts
# end to end; before: 1,465 MB at 50k). A plain ``merge`` (dlt's ROW_NUMBER dedup) of >~40k vectors does
# not fit in it: declare the merge deduplicated (``harvest.dedup.MERGE_DISPOSITION``) or raise the limit.
LOAD_MEMORY_LIMIT = "512MB"


def duckdb_destination(path: str, memory_limit: str | None = LOAD_MEMORY_LIMIT) -> Any:
    """A DuckDB destination at ``path`` with the vector type mapper, ALPRD off and bounded load memory.

    ``memory_limit=None`` leaves DuckDB's default (80% of RAM).
    """
    credentials = DuckDbCredentials(path)
    config: dict[str, Any] = {"disabled_compression_methods": "alprd"}
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
        config["preserve_insertion_order"] = False
    credentials.global_config = config
    return dlt.destinations.duckdb(credentials, type_mapper=VectorDuckDbTypeMapper)


def create_duckdb_pipeline(
    pipeline_name: str,
    dataset_name: str,
    destination_path: str | None = None,
    pipelines_dir: str | None = None,
    memory_limit: str | None = LOAD_MEMORY_LIMIT,
    **pipeline_kwargs: Any,
) -> dlt.Pipeline:
    """The seed guide's helper, fixed: vectors stay ``FLOAT[n]``, the file path is explicit and the
    load's memory is bounded.

    ``destination_path`` defaults to ``<pipeline_name>.duckdb`` in the working directory (dlt's own
    default); ``pipelines_dir`` defaults to dlt's (``~/.dlt/pipelines``). ``memory_limit`` caps DuckDB
    during dlt's load (a DuckDB size string, e.g. ``"2GB"``; ``None``: DuckDB's default, 80% of RAM).
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
        destination=duckdb_destination(path, memory_limit),
        dataset_name=dataset_name,
        **pipeline_kwargs,
    )
