"""``rag_index``: the DuckDB RAG index (native FLOAT[dim] + HNSW + BM25) over summaries and passages.

Unpartitioned on purpose: one index answers questions over the whole corpus. It is rebuilt incrementally
from the warehouse (only new/changed rows are added), and ``rag_index_sensor`` requests it whenever a
``summary_embeddings`` partition lands.
"""

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from harvest_defs.defs.assets.chunks import CHUNK_EMBEDDINGS_KEY, CHUNK_TABLE
from harvest_defs.defs.assets.voyage import EMBEDDINGS_KEY
from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import DUCKDB_POOL, HarvestStoreResource, VoyageResource
from harvest_defs.defs.warehouse import VOYAGE_TABLE

if TYPE_CHECKING:
    from harvest_defs.rag.incoming import Spooled
    from harvest_defs.rag.index import IndexStats

RAG_INDEX_KEY = dg.AssetKey("rag_index")
# Set by rag_index_sensor: the summary_embeddings partitions that landed since the last index run.
PARTITIONS_TAG = "harvest/partitions"

# One row per embedded summary: the id is the document id (= Claude custom_id = Voyage embedding_id).
INDEX_ROWS_SQL = f"""
SELECT embedding_id AS chunk_id, embedding_id AS document_id, text, model, text_hash, embedding
FROM {VOYAGE_TABLE}
"""

# With the documents' snapshots at hand, a chunk carries the summary *and* the document it summarizes:
# the vector is the summary's (what was embedded), while BM25 and the answer prompt see the full text —
# a summary alone drops the details questions ask about ("within 15 minutes").
INDEX_ROWS_WITH_DOCUMENTS_SQL = f"""
SELECT e.embedding_id AS chunk_id, e.embedding_id AS document_id,
       CASE WHEN d.text IS NULL THEN e.text ELSE e.text || chr(10) || chr(10) || d.text END AS text,
       e.model,
       CASE WHEN d.text IS NULL THEN e.text_hash ELSE sha256(e.text_hash || coalesce(d.text_hash, d.text)) END
           AS text_hash,
       e.embedding
FROM {VOYAGE_TABLE} e
LEFT JOIN (SELECT DISTINCT ON (document_id) document_id, text, text_hash FROM read_parquet({{files}})) d
       ON d.document_id = e.embedding_id
"""


# Passage rows (issue 15): the passage as embedded (heading path + text, or context + passage) is what
# BM25 indexes and the answerer reads; ``chunk_id`` = ``<document_id>--<hex>`` never equals a document id,
# which is how search tells passages from summary rows.
CHUNK_ROWS_SQL = f"""
SELECT embedding_id AS chunk_id, document_id, text, model, text_hash, embedding
FROM {CHUNK_TABLE} WHERE document_id IS NOT NULL
"""


def index_rows_sql(store: HarvestStoreResource, with_chunks: bool = False) -> str:
    files = sorted(store.documents_dir.glob("*.parquet")) if store.documents_dir.exists() else []
    if not files:
        summaries = INDEX_ROWS_SQL
    else:
        quoted = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        summaries = INDEX_ROWS_WITH_DOCUMENTS_SQL.format(files=f"[{quoted}]")
    return f"{summaries} UNION ALL {CHUNK_ROWS_SQL}" if with_chunks else summaries


def _has_chunk_table(store: HarvestStoreResource) -> bool:
    from harvest_defs.defs.warehouse import table_exists

    if not store.warehouse_path.exists():
        return False
    import duckdb

    with store.duckdb_lock(store.warehouse_path, exclusive=False):
        con = duckdb.connect(str(store.warehouse_path), read_only=True)
        try:
            return table_exists(con, CHUNK_TABLE)
        finally:
            con.close()


def _spool_warehouse(store: HarvestStoreResource, sql: str, target: Path) -> "Spooled | None":
    """The index rows written to ``target`` in bounded batches, under the warehouse's shared lock only (the
    graph build that follows can take minutes at 1M rows and must not hold off the loads); None when
    nothing is embedded yet. Never one Arrow table: that was 4.3 GB at 1M x 1024."""
    from harvest_defs.defs.warehouse import table_exists
    from harvest_defs.rag.incoming import source_connection, spool

    if not store.warehouse_path.exists():
        return None
    with store.duckdb_lock(store.warehouse_path, exclusive=False):
        con = source_connection(store.warehouse_path)
        try:
            if not table_exists(con, VOYAGE_TABLE):
                return None
            return spool(con.sql(sql), target)
        finally:
            con.close()


@dg.asset(
    key=RAG_INDEX_KEY,
    deps=[EMBEDDINGS_KEY, CHUNK_EMBEDDINGS_KEY],
    group_name="harvest",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description="DuckDB RAG index over all summary embeddings (vector HNSW + BM25 full text).",
)
def rag_index(
    context: dg.AssetExecutionContext, store: HarvestStoreResource, voyage: VoyageResource
) -> dg.MaterializeResult:
    from harvest_defs.defs.assets.rag_backends import postgres_rag_index, uses_postgres_index

    if uses_postgres_index(store):  # pgvector in the deployment's Postgres (rag_backends.py)
        return postgres_rag_index(context, store, voyage)
    started = time.monotonic()
    sql = index_rows_sql(store, with_chunks=_has_chunk_table(store))
    store.rag_path.parent.mkdir(parents=True, exist_ok=True)
    target = store.rag_path.with_name(
        f".{store.rag_path.name}.source-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    )
    try:
        return _materialize(context, store, voyage, sql, target, started)
    finally:
        target.unlink(missing_ok=True)


def _materialize(
    context: dg.AssetExecutionContext,
    store: HarvestStoreResource,
    voyage: VoyageResource,
    sql: str,
    target: Path,
    started: float,
) -> dg.MaterializeResult:
    import pyarrow as pa

    from harvest_defs.rag.incoming import Spooled
    from harvest_defs.rag.index import REQUIRED_COLUMNS, build_index

    rows: pa.Table | Spooled | None = _spool_warehouse(store, sql, target)
    if rows is None:  # nothing embedded yet (an empty or unreadable corpus): the index is empty too
        from harvest_defs.harvest.voyage.settings import model_spec

        dim = model_spec(voyage.model).dimension(voyage.dims)
        context.log.info("no embeddings in the warehouse yet: the index is empty")
        rows = pa.table(
            {
                **{name: pa.array([], pa.string()) for name in REQUIRED_COLUMNS[:-1]},
                "embedding": pa.array([], pa.list_(pa.float32(), dim)),
            }
        )

    # The index swaps in atomically (readers never wait); the lock only orders two concurrent builds so
    # neither overwrites the other's additions. ``prune``: rows is the whole embeddings table.
    with store.duckdb_lock(store.rag_path, exclusive=True):
        stats = build_index(rows, store.rag_path, prune=True)
    context.log.info(f"index {store.rag_path.name}: {stats.as_dict()}")
    return dg.MaterializeResult(
        metadata=as_metadata(
            {
                **index_run_metadata(
                    context, stats, rows.rows if isinstance(rows, Spooled) else rows.num_rows
                ),
                "index_path": dg.MetadataValue.path(str(store.rag_path)),
                "built_at": dg.MetadataValue.timestamp(time.time()),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
    )


def index_run_metadata(
    context: dg.AssetExecutionContext, stats: "IndexStats", source_rows: int
) -> dict[str, Any]:
    """What an index run reports on either backend: what the index holds now first (an update that
    changed nothing is still a full index), then what this run changed, then where a big build spent
    its time and memory (seconds; the process peak after each step; absent on Postgres)."""
    covered = context.run.tags.get(PARTITIONS_TAG)
    changed = stats.rows_added + stats.rows_replaced + stats.rows_removed
    return {
        "rows_indexed": stats.total_rows,
        "dagster/row_count": stats.total_rows,
        "partitions_covered": dg.MetadataValue.json(covered.split(",")) if covered else None,
        "status": (
            f"{stats.total_rows} rows indexed; this run changed {changed}"
            if changed or stats.rebuilt
            else f"{stats.total_rows} rows indexed; already up to date, nothing to change"
        ),
        "rows_added": stats.rows_added,
        "rows_replaced": stats.rows_replaced,
        "rows_removed": stats.rows_removed,
        "rebuilt": stats.rebuilt,
        "dimension": stats.dim,
        "source_rows": source_rows,
        "phases_s": dg.MetadataValue.json(stats.phases) if stats.phases else None,
        "peak_rss_mb": max((m["peak_mb"] for m in stats.memory.values()), default=None),
    }
