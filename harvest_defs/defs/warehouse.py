"""The warehouse seam of the Dagster layer: one object per backend that loads and reads the tables.

Why a seam: the assets, checks and figures read and write the same tables whether they live in the
DuckDB file under ``HARVEST_HOME`` (the default, one machine) or in Postgres (``HARVEST_BACKEND=postgres``,
one pod per run, no shared disk). The backend is chosen once, from ``store.backend_settings()``, by
:func:`open_warehouse`; callers write their SQL once against DuckDB's names (``harvest.claude_messages``,
``?`` placeholders) and the Postgres implementation maps them (``harvest_defs.defs.warehouse_pg``).

The module-level helpers (``query_arrow``/``query_rows``/``partition_rows``) keep their signatures: a
``db_path`` equal to the store's warehouse goes through the store's backend, any other path is a DuckDB
file (a component's own index, for example).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harvest_defs.defs.resources import HarvestStoreResource

if TYPE_CHECKING:
    import pyarrow as pa

DATASET = "harvest"
CLAUDE_TABLE = f"{DATASET}.claude_messages"
VOYAGE_TABLE = f"{DATASET}.voyage_embeddings"


class Warehouse(Protocol):
    """Where the chain's dlt tables live. SQL is DuckDB-flavoured (``?``, ``harvest.<table>``); every
    implementation accepts it for the portable subset the assets use (aggregates, ``FILTER``, joins)."""

    backend: str
    location: str  # for messages and metadata; never a DSN

    def lock(self, exclusive: bool = True) -> AbstractContextManager[None]:
        """Held around a load (exclusive) or a read (shared) so two runs never interleave a merge."""
        ...

    def pipeline(self, pipeline_name: str, dataset_name: str = DATASET) -> Any:
        """A dlt pipeline loading ``dataset_name`` into this warehouse (its working folder is local)."""
        ...

    def run_kwargs(self) -> dict[str, Any]:
        """Extra ``pipeline.run`` arguments this destination needs (e.g. a loader file format)."""
        ...

    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, needs: str | None = None
    ) -> pa.Table | None:
        """One read-only query; ``None`` when the table ``needs`` (or the whole warehouse) is missing."""
        ...

    def table_exists(self, qualified: str) -> bool: ...

    def columns(self, qualified: str) -> list[tuple[str, str]]:
        """(name, type) of a table in table order; [] before the first load."""
        ...

    def vector_length(self, column: str) -> str:
        """A SQL expression for the length of the embedding ``column`` (``FLOAT[]`` or ``jsonb``)."""
        ...


def open_warehouse(store: HarvestStoreResource) -> Warehouse:
    """The one place a backend name becomes a warehouse."""
    settings = store.backend_settings()
    if settings.name == "postgres":
        from harvest_defs.defs.warehouse_pg import PostgresWarehouse

        return PostgresWarehouse(settings, store.pipelines_dir)
    from harvest_defs.defs.warehouse_duckdb import DuckDBWarehouse

    return DuckDBWarehouse(store)


def _is_store_warehouse(store: HarvestStoreResource, db_path: Path) -> bool:
    return Path(db_path) == store.warehouse_path


def query_arrow(
    store: HarvestStoreResource,
    db_path: Path,
    sql: str,
    params: Sequence[Any] = (),
    *,
    needs: str | None = None,
) -> pa.Table | None:
    """Run one read-only query; ``None`` when the file or the table ``needs`` does not exist yet."""
    if _is_store_warehouse(store, db_path):
        return store.warehouse().query_arrow(sql, params, needs=needs)
    from harvest_defs.defs.warehouse_duckdb import DuckDBWarehouse

    return DuckDBWarehouse(store, Path(db_path)).query_arrow(sql, params, needs=needs)


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


def table_exists(con: Any, qualified: str) -> bool:
    """On an open DuckDB connection (components use it); warehouses answer ``table_exists`` themselves."""
    schema, name = qualified.split(".", 1)
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


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
    warehouse = store.warehouse()
    if "partition_key" not in {name for name, _ in warehouse.columns(qualified)}:
        return []
    selected = ", ".join([key, *columns])
    table = warehouse.query_arrow(
        f"SELECT {selected} FROM {qualified} WHERE partition_key = ?", [partition], needs=qualified
    )
    return [] if table is None else list(table.to_pylist())


@contextmanager
def loading(store: HarvestStoreResource, pipeline_name: str, dataset_name: str = DATASET) -> Iterator[Any]:
    """The warehouse's write lock held, and a pipeline attached inside it (see ``run_dlt_locked``)."""
    warehouse = store.warehouse()
    with warehouse.lock(exclusive=True):
        yield warehouse.pipeline(pipeline_name, dataset_name)
