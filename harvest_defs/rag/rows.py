"""Index input rows checked and typed: the columns a build needs, embeddings as ``FixedSizeList<float32>``.

Shared by every backend (DuckDB file, Postgres) and by the spool, which normalises batch by batch.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

REQUIRED_COLUMNS = ("chunk_id", "document_id", "text", "embedding")
OPTIONAL_COLUMNS = ("model", "text_hash")


class DimensionMismatchError(ValueError):
    """Rows carry embeddings of another dimension than the index (or than each other)."""


def _to_arrow(rows: pa.Table | duckdb.DuckDBPyRelation) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    to_table = getattr(rows, "to_arrow_table", None) or rows.fetch_arrow_table
    return to_table()


def normalize_rows(rows: pa.Table | duckdb.DuckDBPyRelation) -> tuple[pa.Table, int | None]:
    """Check the columns and coerce ``embedding`` to ``FixedSizeList<float32>[dim]``; returns (table, dim).

    Variable-length lists (e.g. from JSON or a plain Python list) are accepted when every row has the same
    length; anything ragged raises DimensionMismatchError. ``dim`` is None only for an empty variable list.
    """
    table = _to_arrow(rows)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(
            f"rows lack column(s) {missing}; need {REQUIRED_COLUMNS} (+ optional {OPTIONAL_COLUMNS})"
        )
    for name in OPTIONAL_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    table = table.select([*REQUIRED_COLUMNS[:3], *OPTIONAL_COLUMNS, "embedding"])
    embedding = table.column("embedding")
    kind = embedding.type
    if pa.types.is_fixed_size_list(kind):
        dim: int | None = kind.list_size
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = pc.unique(pc.list_value_length(embedding)).to_pylist()
        if len(lengths) > 1:
            raise DimensionMismatchError(f"embeddings have mixed dimensions {sorted(lengths)}")
        dim = lengths[0] if lengths else None
    else:
        raise TypeError(f"embedding must be a list of floats, got {kind}")
    if dim is not None:
        target = pa.list_(pa.float32(), dim)
        if embedding.type != target:
            embedding = embedding.cast(pa.list_(pa.float32())).cast(target)
        table = table.set_column(table.column_names.index("embedding"), "embedding", embedding)
    for name in ("chunk_id", "document_id", "text", "model", "text_hash"):
        column = table.column(name)
        if column.type != pa.string():
            table = table.set_column(table.column_names.index(name), name, column.cast(pa.string()))
    if table.column("chunk_id").null_count or table.column("document_id").null_count:
        raise ValueError("chunk_id and document_id must not be null")
    return table, dim
