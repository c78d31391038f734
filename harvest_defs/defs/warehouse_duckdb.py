"""The embedded warehouse: ``warehouse.duckdb`` under ``HARVEST_HOME`` (what existed before backends).

Readers open the file read-only under the shared side of ``store.duckdb_lock``: DuckDB refuses a
read-only open while a writer holds the file, so they wait for the writer instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.warehouse import DATASET, table_exists

if TYPE_CHECKING:
    import pyarrow as pa


class DuckDBWarehouse:
    """The store's ``warehouse.duckdb``, or (``path``) another DuckDB file read the same way, e.g. a
    component's own index: one read path, under the store's lock for that file."""

    backend = "duckdb"

    def __init__(self, store: HarvestStoreResource, path: Path | None = None) -> None:
        self._store = store
        self.path = Path(path) if path is not None else store.warehouse_path
        self.location = str(self.path)

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.location!r})"

    def lock(self, exclusive: bool = True) -> AbstractContextManager[None]:
        return self._store.duckdb_lock(self.path, exclusive=exclusive)

    def pipeline(self, pipeline_name: str, dataset_name: str = DATASET) -> Any:
        from harvest_defs.harvest.pipeline import create_duckdb_pipeline

        return create_duckdb_pipeline(
            pipeline_name=pipeline_name,
            dataset_name=dataset_name,
            destination_path=str(self.path),
            pipelines_dir=str(self._store.pipelines_dir),
            # Bounded (512 MB unless configured): every load here declares its merge deduplicated
            # (defs/unique_merge.py), so no ROW_NUMBER window over the vectors; DuckDB spills instead.
            memory_limit=self._store.load_memory_limit(),
        )

    def run_kwargs(self) -> dict[str, Any]:
        return {}

    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, needs: str | None = None
    ) -> pa.Table | None:
        """One read-only query; ``None`` when the file or the table ``needs`` is missing."""
        import duckdb

        if not self.path.exists():
            return None
        with self.lock(exclusive=False):
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                if needs is not None and not table_exists(con, needs):
                    return None
                return con.execute(sql, list(params)).to_arrow_table()
            finally:
                con.close()

    def table_exists(self, qualified: str) -> bool:
        return bool(self.columns(qualified))

    def columns(self, qualified: str) -> list[tuple[str, str]]:
        schema, name = qualified.split(".", 1)
        table = self.query_arrow(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        )
        return [(str(r["column_name"]), str(r["data_type"])) for r in (table.to_pylist() if table else [])]

    def vector_length(self, column: str) -> str:
        return f"len({column}::FLOAT[])"
