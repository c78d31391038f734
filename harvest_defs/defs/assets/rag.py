"""``rag_index``: the DuckDB RAG index (native FLOAT[dim] + HNSW + BM25) over every summary embedding.

Unpartitioned on purpose: one index answers questions over the whole corpus. It is rebuilt incrementally
from the warehouse (only new/changed rows are added), and ``rag_index_sensor`` requests it whenever a
``summary_embeddings`` partition lands.
"""

import time

import dagster as dg

from harvest_defs.defs.assets.voyage import EMBEDDINGS_KEY
from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import DUCKDB_POOL, HarvestStoreResource, VoyageResource
from harvest_defs.defs.warehouse import VOYAGE_TABLE, query_arrow

RAG_INDEX_KEY = dg.AssetKey("rag_index")

# One row per embedded summary: the id is the document id (= Claude custom_id = Voyage embedding_id).
INDEX_ROWS_SQL = f"""
SELECT embedding_id AS chunk_id, embedding_id AS document_id, text, model, text_hash, embedding
FROM {VOYAGE_TABLE}
"""


@dg.asset(
    key=RAG_INDEX_KEY,
    deps=[EMBEDDINGS_KEY],
    group_name="harvest",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description="DuckDB RAG index over all summary embeddings (vector HNSW + BM25 full text).",
)
def rag_index(
    context: dg.AssetExecutionContext, store: HarvestStoreResource, voyage: VoyageResource
) -> dg.MaterializeResult:
    started = time.monotonic()
    rows = query_arrow(store, store.warehouse_path, INDEX_ROWS_SQL, needs=VOYAGE_TABLE)
    if rows is None:
        raise dg.Failure("No embeddings in the warehouse yet: materialize summary_embeddings first.")
    from harvest_defs.rag.index import build_index

    # The index swaps in atomically (readers never wait); the lock only orders two concurrent builds so
    # neither overwrites the other's additions. ``prune``: rows is the whole embeddings table.
    with store.duckdb_lock(store.rag_path, exclusive=True):
        stats = build_index(rows, store.rag_path, prune=True)
    context.log.info(f"index {store.rag_path.name}: {stats.as_dict()}")
    return dg.MaterializeResult(
        metadata=as_metadata(
            {
                "dagster/row_count": stats.total_rows,
                "rows_added": stats.rows_added,
                "rows_replaced": stats.rows_replaced,
                "rows_removed": stats.rows_removed,
                "rebuilt": stats.rebuilt,
                "dimension": stats.dim,
                "source_rows": rows.num_rows,
                "index_path": dg.MetadataValue.path(str(store.rag_path)),
                "built_at_unix": time.time(),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
    )
