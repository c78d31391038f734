"""The rows a build adds, in bounded memory: an Arrow table as given, a DuckDB relation spooled to Parquet.

Why spool: at 1M x 1024 a relation fetched as one Arrow table is 4.3 GB of float32 held for the whole build,
next to DuckDB and the ANN graph. Fetched in ``BATCH_ROWS`` batches, normalised batch by batch and written to
an uncompressed Parquet file beside the index, it costs one batch of memory; DuckDB then reads the file as a
view (twice: once to count the changes, once to write them) within its own ``memory_limit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 50_000

Incoming: TypeAlias = pa.Table | Path


def _reader(rows: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    to_reader = getattr(rows, "to_arrow_reader", None) or rows.fetch_record_batch
    return to_reader(BATCH_ROWS)


def spool(rows: duckdb.DuckDBPyRelation, target: Path) -> tuple[Path, int | None, int]:
    """Write ``rows`` normalised to ``target`` batch by batch; returns (target, dim, row count)."""
    from harvest_defs.rag.index import DimensionMismatchError, normalize_rows

    reader = _reader(rows)
    writer: pq.ParquetWriter | None = None
    dim: int | None = None
    count = 0
    try:
        for batch in reader:
            table, batch_dim = normalize_rows(pa.Table.from_batches([batch]))
            if batch_dim is not None and dim is not None and batch_dim != dim:
                raise DimensionMismatchError(f"embeddings have mixed dimensions {sorted({dim, batch_dim})}")
            dim = dim if batch_dim is None else batch_dim
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema, compression="none")
            writer.write_table(table.cast(writer.schema))
            count += table.num_rows
        if writer is None:
            empty, dim = normalize_rows(reader.schema.empty_table())
            writer = pq.ParquetWriter(target, empty.schema, compression="none")
            writer.write_table(empty)
    finally:
        if writer is not None:
            writer.close()
    return target, dim, count


def attach(con: duckdb.DuckDBPyConnection, incoming: Incoming, dim: int) -> None:
    """Make ``incoming`` a relation named ``incoming`` on ``con`` (embedding typed ``FLOAT[dim]``)."""
    if isinstance(incoming, pa.Table):
        con.register("incoming", incoming)
        return
    quoted = str(incoming).replace("'", "''")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW incoming AS SELECT * REPLACE "
        f"(CAST(embedding AS FLOAT[{int(dim)}]) AS embedding) FROM read_parquet('{quoted}')"
    )
