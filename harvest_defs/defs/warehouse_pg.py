"""The warehouse on Postgres: dlt's ``postgres`` destination, one schema per dataset, read with psycopg.

What differs from the DuckDB file, and where it is hidden:
- Names: a dataset ``harvest`` is the schema ``<HARVEST_POSTGRES_SCHEMA>_harvest`` (``dataset_schema``), so
  two deployments or tests on one server never share tables. SQL written against ``harvest.<table>`` is
  rewritten here; callers never spell a Postgres schema.
- Placeholders: ``?`` becomes ``%s`` (a literal ``%`` is escaped).
- Types: ``embedding`` is ``jsonb`` (dlt has no pgvector type); it reads back as a list of floats, which
  ``rag.index.normalize_rows`` coerces. The typed ``vector(dim)`` copy lives in the index (``rag/pg_index``).
- Locking: readers never block (MVCC), so the shared side is a no-op; a load holds a session advisory
  lock for the warehouse, the server-wide equivalent of the file lock: two run pods merging into the same
  tables (and dlt's shared ``_staging`` schema) take turns instead of interleaving.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.warehouse import DATASET
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline, dataset_schema

if TYPE_CHECKING:
    import pyarrow as pa

# ``harvest.x`` / ``harvest_questions.x`` (any dataset of ours), not inside another identifier.
_DATASET_RE = re.compile(r'(?<![\w."])(harvest(?:_[a-z0-9_]*)?)\.(?=[A-Za-z_"])')


def postgres_sql(sql: str, settings: BackendSettings) -> str:
    """DuckDB-flavoured SQL of the assets as psycopg runs it on this deployment's schemas."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    return _DATASET_RE.sub(lambda m: f'"{dataset_schema(m.group(1), settings)}".', sql)


def _arrow(names: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    import pyarrow as pa

    return pa.table({name: pa.array([row[i] for row in rows]) for i, name in enumerate(names)})


class PostgresWarehouse:
    backend = "postgres"

    def __init__(self, settings: BackendSettings, pipelines_dir: Path) -> None:
        assert settings.postgres_dsn is not None  # checked by BackendSettings
        self._settings = settings
        self._pipelines_dir = pipelines_dir
        self.location = f"postgresql:{dataset_schema(DATASET, settings)}"

    def __repr__(self) -> str:  # never the DSN
        return f"PostgresWarehouse({self.location!r})"

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._settings.postgres_dsn or "", autocommit=True, connect_timeout=30)

    def lock(self, exclusive: bool = True) -> AbstractContextManager[None]:
        return self._exclusive() if exclusive else nullcontext()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        key = zlib.crc32(f"harvest-warehouse:{self.location}".encode())
        with self._connect() as con:
            con.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                con.execute("SELECT pg_advisory_unlock(%s)", (key,))  # also released if the pod dies

    def pipeline(self, pipeline_name: str, dataset_name: str = DATASET) -> Any:
        return create_harvest_pipeline(
            pipeline_name, dataset_name, pipelines_dir=str(self._pipelines_dir), settings=self._settings
        )

    def run_kwargs(self) -> dict[str, Any]:
        # dlt's postgres destination takes INSERT or CSV files, not Parquet: Arrow tables go as INSERTs.
        return {"loader_file_format": "insert_values"}

    def _schema(self, qualified: str) -> tuple[str, str]:
        dataset, name = qualified.split(".", 1)
        return dataset_schema(dataset, self._settings), name

    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, needs: str | None = None
    ) -> pa.Table | None:
        if needs is not None and not self.table_exists(needs):
            return None
        with self._connect() as con:
            cursor = con.execute(postgres_sql(sql, self._settings), tuple(params))
            names = [column.name for column in cursor.description or []]
            return _arrow(names, cursor.fetchall())

    def table_exists(self, qualified: str) -> bool:
        schema, name = self._schema(qualified)
        with self._connect() as con:
            row = con.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()
        return bool(row and row[0] is not None)

    def columns(self, qualified: str) -> list[tuple[str, str]]:
        schema, name = self._schema(qualified)
        with self._connect() as con:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def vector_length(self, column: str) -> str:
        return f"jsonb_array_length({column})"
