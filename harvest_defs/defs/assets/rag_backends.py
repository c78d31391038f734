"""``rag_index`` on the Postgres backend: the pgvector index (``rag/pg_index.py``) built from the warehouse.

Why the same rows as the DuckDB path, computed the same way: the index rows are the summaries joined with
their documents' snapshots plus the passages (``rag.index_rows_sql``). On Postgres the two warehouse
tables are read once into an in-memory DuckDB under their usual names and that very SQL runs over them,
so both backends index identical ids, texts and text hashes (and ``harvest ask`` agrees across them).
The load is incremental (``build_pg_index`` upserts only changed rows) and prunes what left the warehouse.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dagster as dg

from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import HarvestStoreResource, VoyageResource
from harvest_defs.defs.warehouse import VOYAGE_TABLE

if TYPE_CHECKING:
    import pyarrow as pa

SUMMARY_COLUMNS = "embedding_id, text, model, text_hash, embedding"
CHUNK_COLUMNS = "embedding_id, document_id, text, model, text_hash, embedding"


def uses_postgres_index(store: HarvestStoreResource) -> bool:
    return store.backend_settings().name == "postgres"


def indexed_ids(store: HarvestStoreResource) -> list[str]:
    """Every chunk_id in the store's index (the DuckDB file, or the Postgres table); [] before a build."""
    if not uses_postgres_index(store):
        from harvest_defs.rag.index import indexed_ids as file_ids

        with store.duckdb_lock(store.rag_path, exclusive=False):
            return file_ids(store.rag_path)
    from harvest_defs.rag.pg_index import CHUNKS_TABLE, connect_index

    with connect_index(store.backend_settings()) as con:
        if con.execute("SELECT to_regclass(%s)", (CHUNKS_TABLE,)).fetchone() == (None,):
            return []
        return [str(r[0]) for r in con.execute(f"SELECT chunk_id FROM {CHUNKS_TABLE} ORDER BY chunk_id")]


def _empty_rows(voyage: VoyageResource) -> pa.Table:
    import pyarrow as pa

    from harvest_defs.harvest.voyage.settings import model_spec
    from harvest_defs.rag.index import REQUIRED_COLUMNS

    dim = model_spec(voyage.model).dimension(voyage.dims)
    return pa.table(
        {
            **{name: pa.array([], pa.string()) for name in REQUIRED_COLUMNS[:-1]},
            "embedding": pa.array([], pa.list_(pa.float32(), dim)),
        }
    )


def postgres_index_rows(store: HarvestStoreResource) -> pa.Table | None:
    """The DuckDB backend's index rows, computed over the Postgres warehouse (None: nothing embedded)."""
    import duckdb

    from harvest_defs.defs.assets.chunks import CHUNK_TABLE
    from harvest_defs.defs.assets.documents import sync_snapshots
    from harvest_defs.defs.assets.rag import index_rows_sql

    warehouse = store.warehouse()
    summaries = warehouse.query_arrow(f"SELECT {SUMMARY_COLUMNS} FROM {VOYAGE_TABLE}", needs=VOYAGE_TABLE)
    if summaries is None or summaries.num_rows == 0:
        return None
    chunks = warehouse.query_arrow(
        f"SELECT {CHUNK_COLUMNS} FROM {CHUNK_TABLE} WHERE document_id IS NOT NULL", needs=CHUNK_TABLE
    )
    with_chunks = chunks is not None and chunks.num_rows > 0
    sync_snapshots(store)  # the documents' text, from object storage when this disk is fresh
    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA harvest")
        con.register("_summaries", summaries)
        con.execute(f"CREATE VIEW {VOYAGE_TABLE} AS SELECT * FROM _summaries")
        if with_chunks:
            con.register("_chunks", chunks)
            con.execute(f"CREATE VIEW {CHUNK_TABLE} AS SELECT * FROM _chunks")
        return con.execute(index_rows_sql(store, with_chunks=with_chunks)).to_arrow_table()
    finally:
        con.close()


def postgres_rag_index(
    context: dg.AssetExecutionContext, store: HarvestStoreResource, voyage: VoyageResource
) -> dg.MaterializeResult:
    """Upsert the index rows into pgvector (HNSW + ``tsvector``), deleting rows no longer in the source."""
    from harvest_defs.defs.assets.rag import index_run_metadata
    from harvest_defs.rag.pg_index import build_pg_index

    started = time.monotonic()
    rows = postgres_index_rows(store)
    if rows is None:
        context.log.info("no embeddings in the warehouse yet: the index is empty")
        rows = _empty_rows(voyage)
    stats = build_pg_index(rows, store.backend_settings(), prune=True)
    context.log.info(f"index {stats.path}: {stats.as_dict()}")
    metadata: dict[str, Any] = {
        **index_run_metadata(context, stats, rows.num_rows),
        "index_path": dg.MetadataValue.text(stats.path),
        "backend": "postgres",
        "built_at": dg.MetadataValue.timestamp(time.time()),
        "duration_s": round(time.monotonic() - started, 3),
    }
    return dg.MaterializeResult(metadata=as_metadata(metadata))


def index_for_search(store: HarvestStoreResource) -> tuple[bool, Any]:
    """(an index exists, the ``rag_path`` to pass to ``rag.answer``/``rag.search``): the DuckDB file, or
    None on Postgres (``open_search_connection`` then connects to the deployment's index)."""
    if not uses_postgres_index(store):
        return store.rag_path.exists(), store.rag_path
    return bool(indexed_ids(store)), None
