"""Read-only access to the DuckDB files from Dagster code, under the same lock the writers take.

Checks, the embedding step and the index build read tables that another run may be writing; DuckDB would
refuse a read-only open while a writer holds the file, so readers wait on the shared side of the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.resources import HarvestStoreResource

if TYPE_CHECKING:
    import pyarrow as pa

DATASET = "harvest"
CLAUDE_TABLE = f"{DATASET}.claude_messages"
VOYAGE_TABLE = f"{DATASET}.voyage_embeddings"


def table_exists(con: Any, qualified: str) -> bool:
    schema, name = qualified.split(".", 1)
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def query_arrow(
    store: HarvestStoreResource,
    db_path: Path,
    sql: str,
    params: Sequence[Any] = (),
    *,
    needs: str | None = None,
) -> pa.Table | None:
    """Run one read-only query; ``None`` when the file or the table ``needs`` does not exist yet."""
    import duckdb

    if not db_path.exists():
        return None
    with store.duckdb_lock(db_path, exclusive=False):
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            if needs is not None and not table_exists(con, needs):
                return None
            return con.execute(sql, list(params)).to_arrow_table()
        finally:
            con.close()


def query_rows(
    store: HarvestStoreResource,
    db_path: Path,
    sql: str,
    params: Sequence[Any] = (),
    *,
    needs: str | None = None,
) -> list[dict[str, Any]] | None:
    table = query_arrow(store, db_path, sql, params, needs=needs)
    return None if table is None else list(table.to_pylist())


def column_exists(con: Any, qualified: str, column: str) -> bool:
    schema, name = qualified.split(".", 1)
    row = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [schema, name, column],
    ).fetchone()
    return bool(row and row[0])


def partition_rows(
    store: HarvestStoreResource, qualified: str, key: str, columns: Sequence[str], partition: str
) -> list[dict[str, Any]]:
    """``key`` + ``columns`` of the rows tagged with ``partition`` (none before the first load)."""
    import duckdb

    db_path = store.warehouse_path
    if not db_path.exists():
        return []
    with store.duckdb_lock(db_path, exclusive=False):
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            if not table_exists(con, qualified) or not column_exists(con, qualified, "partition_key"):
                return []
            selected = ", ".join([key, *columns])
            table = con.execute(
                f"SELECT {selected} FROM {qualified} WHERE partition_key = ?", [partition]
            ).to_arrow_table()
        finally:
            con.close()
    return list(table.to_pylist())
