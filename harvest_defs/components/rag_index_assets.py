"""The asset and sensor of one generic ``RagIndex`` instance, and its load-time checks.

The rows go through ``harvest_defs.rag.index.build_index`` — the public API the chain's ``rag_index`` uses:
incremental (only new or changed chunks are written), pruned to the current embeddings, swapped in
atomically so readers never wait. A chunk is one embedding: its vector, and the text shown to the answerer
(and to BM25), which may differ from the embedded text. The chunk's ``text_hash`` combines both, so a new
shown text re-indexes the chunk without re-embedding anything.
"""

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from harvest_defs.components.shared import ComponentConfigError
from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import DUCKDB_POOL, HarvestStoreResource

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLE = re.compile(r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class IndexedTable:
    asset: str
    table: str  # harvest.<table>
    text_column: str
    text_from: tuple[str, str, str] | None  # (table, column, id column)


@dataclass(frozen=True)
class IndexSpec:
    name: str
    tables: tuple[IndexedTable, ...]
    path: str | None  # None: $HARVEST_HOME/<name>.duckdb; relative: under $HARVEST_HOME

    def index_path(self, store: HarvestStoreResource) -> Path:
        given = Path(self.path) if self.path else Path(f"{self.name}.duckdb")
        return given if given.is_absolute() else store.home_path / given


def _qualified(value: str, path: Path, field: str) -> str:
    if not _TABLE.match(value):
        raise ComponentConfigError(
            path, field, f"{value!r}: use <table> or <schema>.<table>, lower_snake_case"
        )
    return value if "." in value else f"harvest.{value}"


def _column(value: str, path: Path, field: str) -> str:
    if not _COLUMN.match(value):
        raise ComponentConfigError(path, field, f"{value!r} is not a column name")
    return value


def resolve_index(config: Any, path: Path) -> IndexSpec:
    if not config.name or not _NAME.match(config.name):
        raise ComponentConfigError(
            path, "name", f"{config.name!r}: required, lower_snake_case (an asset key)"
        )
    if not config.embeddings:
        raise ComponentConfigError(
            path, "embeddings", "required: at least one {asset: <VoyageEmbeddings name>}"
        )
    tables = []
    for n, ref in enumerate(config.embeddings):
        where = f"embeddings[{n}]"
        text_from = None
        if ref.text_from is not None:
            text_from = (
                _qualified(ref.text_from.table, path, f"{where}.text_from.table"),
                _column(ref.text_from.column, path, f"{where}.text_from.column"),
                _column(ref.text_from.id_column, path, f"{where}.text_from.id_column"),
            )
        tables.append(
            IndexedTable(
                asset=ref.asset,
                table=_qualified(ref.table or ref.asset.split("/")[-1], path, f"{where}.table"),
                text_column=_column(ref.text_column, path, f"{where}.text_column"),
                text_from=text_from,
            )
        )
    assets = [t.asset for t in tables]
    if len(set(assets)) != len(assets):
        raise ComponentConfigError(path, "embeddings", f"an asset is listed twice: {assets}")
    return IndexSpec(name=config.name, tables=tuple(tables), path=config.path)


def rows_sql(table: IndexedTable, prefix: bool) -> str:
    """One chunk per successful embedding; ``chunk_id`` prefixed by the asset when several are indexed."""
    shown = f'e."{table.text_column}"'
    join = ""
    if table.text_from is not None:
        other, column, id_column = table.text_from
        shown = f'coalesce(CAST(u."{column}" AS VARCHAR), e.text)'
        join = f'LEFT JOIN {other} u ON CAST(u."{id_column}" AS VARCHAR) = e.embedding_id'
    chunk = f"'{table.asset}:' || e.embedding_id" if prefix else "e.embedding_id"
    return (
        f"SELECT {chunk} AS chunk_id, e.embedding_id AS document_id, CAST({shown} AS VARCHAR) AS text, "
        f"e.model, sha256(coalesce(e.text_hash, '') || chr(10) || coalesce(CAST({shown} AS VARCHAR), '')) "
        "AS text_hash, "
        f"e.embedding FROM {table.table} e {join} WHERE e.success AND e.embedding IS NOT NULL"
    )


def _rows(spec: IndexSpec, store: HarvestStoreResource, log: Any) -> Any:
    import pyarrow as pa

    from harvest_defs.defs.warehouse import query_arrow

    parts = []
    for table in spec.tables:
        rows = query_arrow(
            store, store.warehouse_path, rows_sql(table, len(spec.tables) > 1), needs=table.table
        )
        if rows is None:
            log.info(f"{spec.name}: {table.table} does not exist yet (materialize {table.asset}); skipped")
            continue
        parts.append(rows)
    if not parts:
        return None
    dims = {p.schema.field("embedding").type for p in parts}
    if len(dims) > 1:
        raise dg.Failure(
            f"{spec.name}: the embeddings tables have different vector types {sorted(map(str, dims))}"
        )
    return pa.concat_tables(parts)


def build_index_asset(spec: IndexSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        deps=[dg.AssetKey.from_user_string(t.asset) for t in spec.tables],
        group_name=spec.name,
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        description=f"DuckDB RAG index (HNSW + BM25) over {', '.join(t.table for t in spec.tables)}.",
    )
    def index(context: dg.AssetExecutionContext, store: HarvestStoreResource) -> dg.MaterializeResult:
        from harvest_defs.defs.assets.rag import index_run_metadata
        from harvest_defs.rag.index import build_index

        started = time.monotonic()
        rows = _rows(spec, store, context.log)
        if rows is None:
            raise dg.Failure(f"{spec.name}: none of its embeddings tables exists yet; materialize them first")
        path = spec.index_path(store)
        with store.duckdb_lock(path, exclusive=True):
            stats = build_index(rows, path, prune=True)  # rows are the whole current embeddings
        context.log.info(f"index {path}: {stats.as_dict()}")
        return dg.MaterializeResult(
            metadata=as_metadata(
                {
                    # The chain's rag_index reports with the same function: one set of names and the same
                    # status line, whichever index a user looks at.
                    **index_run_metadata(context, stats, rows.num_rows),
                    "index_path": dg.MetadataValue.path(str(path)),
                    "duration_s": round(time.monotonic() - started, 3),
                }
            )
        )

    return index


def build_index_sensor(spec: IndexSpec, interval_seconds: int) -> dg.SensorDefinition:
    key = dg.AssetKey(spec.name)
    sources = [dg.AssetKey.from_user_string(t.asset) for t in spec.tables]

    @dg.sensor(
        name=f"{spec.name}_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[key],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Updates {spec.name} (incrementally) after new embeddings land.",
    )
    def index_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        latest = 0
        for source in sources:
            records = context.instance.fetch_materializations(source, limit=1, ascending=False).records
            latest = max([latest, *(r.storage_id for r in records)])
        if not latest:
            return dg.SkipReason(f"none of {[s.to_user_string() for s in sources]} has been materialized")
        if context.cursor and int(context.cursor) >= latest:
            return dg.SkipReason("the index is up to date with the latest embeddings")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{spec.name}-{latest}", asset_selection=[key])],
            cursor=str(latest),
        )

    return index_sensor
