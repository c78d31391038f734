"""The rows a build adds, in bounded memory: an Arrow table as given, a DuckDB relation spooled to Parquet.

Why spool: at 1M x 1024 a relation fetched as one Arrow table is 4.3 GB of float32 held for the whole build,
next to DuckDB and the ANN graph. Fetched in ``BATCH_ROWS`` batches, normalised batch by batch and written to
an uncompressed Parquet file beside the index, it costs one batch of memory; DuckDB then reads the file as a
view (twice: once to count the changes, once to write them) within its own ``memory_limit``.

The source's own DuckDB counts too: a read-only connection keeps every page it scanned in its buffer pool
(default limit 80% of RAM) until the connection closes, so a 1M x 1024 warehouse scan leaves ~4.5 GB cached
for the rest of the build (measured at 200k: 0.8 GB of pages after one scan; ``SET memory_limit`` evicts
them). ``source_connection`` opens the warehouse with ``SOURCE_MEMORY_LIMIT``; ``spool`` can also run
before ``build_index`` (the ``rag_index`` asset does, under the warehouse's shared lock only) and its result
passed in as ``Spooled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from harvest_defs.rag.rows import DimensionMismatchError, normalize_rows

BATCH_ROWS = 50_000
# A scan needs a few row groups in the pool at a time; more only caches pages nobody reads again.
SOURCE_MEMORY_LIMIT = "512MB"

Incoming: TypeAlias = pa.Table | Path


@dataclass(frozen=True)
class Spooled:
    """A Parquet file written by ``spool``: rows normalised (``FixedSizeList<float32>[dim]``), counted."""

    path: Path
    dim: int | None
    rows: int


def source_connection(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse whose buffer pool stays within ``SOURCE_MEMORY_LIMIT``."""
    return duckdb.connect(str(path), read_only=True, config={"memory_limit": SOURCE_MEMORY_LIMIT})


def _reader(rows: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    to_reader = getattr(rows, "to_arrow_reader", None) or rows.fetch_record_batch
    return to_reader(BATCH_ROWS)


def spool(rows: duckdb.DuckDBPyRelation, target: Path) -> Spooled:
    """Write ``rows`` normalised to ``target`` batch by batch (one batch in memory at a time)."""
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
            del table, batch
        if writer is None:
            empty, dim = normalize_rows(reader.schema.empty_table())
            writer = pq.ParquetWriter(target, empty.schema, compression="none")
            writer.write_table(empty)
    finally:
        if writer is not None:
            writer.close()
        reader.close()
        # mimalloc keeps freed batches mapped for reuse; the graph built later needs the memory instead.
        pa.default_memory_pool().release_unused()
    return Spooled(target, dim, count)


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
