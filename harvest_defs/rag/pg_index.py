"""The RAG index on Postgres + pgvector: incremental upserts into one table, no rebuild, no file swap.

Why it differs from ``index.py`` (the DuckDB file): Postgres readers never block on a writer (MVCC), so
there is no copy-and-``os.replace``; pgvector's HNSW graph takes inserts and deletes in place, so a load
only touches the rows that changed (``INSERT ... ON CONFLICT (chunk_id) DO UPDATE ... WHERE IS DISTINCT
FROM``); keyword search uses a stored ``tsvector`` column with a GIN index, kept current by Postgres itself
(a generated column), not rebuilt per load. Loads from several processes are serialized by a transaction
advisory lock on the index (the upsert is one transaction, so a reader sees all of a load or none of it).

Same input as ``build_index``: ``chunk_id, document_id, text, model, text_hash, embedding[dim]``; the
dimension is fixed by the first load (``vector(dim)``, recorded in ``rag_meta``) and a mismatch fails loudly.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
from pgvector.psycopg import register_vector

from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.rag.index import DimensionMismatchError, IndexNotFoundError, IndexStats, normalize_rows

CHUNKS_TABLE = "chunks"
META_TABLE = "rag_meta"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
TEXT_SEARCH_CONFIG = "english"  # the default parser keeps "LF-4471" as one token plus its parts


def _settings(settings: BackendSettings | None) -> BackendSettings:
    resolved = settings or BackendSettings.resolve()
    if resolved.name != "postgres":
        resolved = BackendSettings.resolve(name="postgres")  # raises without a DSN: say what is missing
    return resolved


def connect_index(settings: BackendSettings | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection whose ``search_path`` is the harvest schema, with pgvector's types bound."""
    resolved = _settings(settings)
    assert resolved.postgres_dsn is not None
    con = psycopg.connect(
        resolved.postgres_dsn,
        autocommit=True,
        options=f"-c search_path={resolved.postgres_schema},public",
        connect_timeout=30,
    )
    try:
        if con.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector")  # needs a privileged role the first time
        register_vector(con)
    except BaseException:
        con.close()
        raise
    return con


def index_location(settings: BackendSettings | None = None) -> str:
    """What messages and ``IndexStats.path`` call the index (never the DSN)."""
    return f"postgresql:{_settings(settings).postgres_schema}.{CHUNKS_TABLE}"


def read_meta(con: psycopg.Connection[Any]) -> dict[str, str]:
    """``rag_meta`` as a dict; empty when nothing was indexed into this schema yet."""
    if con.execute("SELECT to_regclass(%s)", (META_TABLE,)).fetchone() == (None,):
        return {}
    return {str(k): str(v) for k, v in con.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()}


def _create(con: psycopg.Connection[Any], schema: str, dim: int) -> None:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {CHUNKS_TABLE} (
            chunk_id TEXT PRIMARY KEY,
            document_id TEXT NOT NULL,
            text TEXT NOT NULL,
            model TEXT,
            text_hash TEXT,
            embedding vector({int(dim)}) NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TEXT_SEARCH_CONFIG}', text)) STORED,
            indexed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    con.execute(f"CREATE INDEX IF NOT EXISTS {CHUNKS_TABLE}_document ON {CHUNKS_TABLE} (document_id)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT)")


def _create_search_indexes(con: psycopg.Connection[Any]) -> None:
    """HNSW and GIN, created *after* the first load's rows (a bulk build is far faster than inserting into
    a graph row by row); later loads insert into both in place (``IF NOT EXISTS`` is then a no-op)."""
    con.execute(
        f"CREATE INDEX IF NOT EXISTS {CHUNKS_TABLE}_embedding_hnsw ON {CHUNKS_TABLE} "
        "USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )
    con.execute(f"CREATE INDEX IF NOT EXISTS {CHUNKS_TABLE}_tsv_gin ON {CHUNKS_TABLE} USING gin (tsv)")


def _stage(con: psycopg.Connection[Any], table: pa.Table, dim: int) -> None:
    """COPY the incoming rows (binary, vectors via pgvector's adapter) into a temp table."""
    con.execute(
        "CREATE TEMP TABLE incoming (chunk_id TEXT, document_id TEXT, text TEXT, model TEXT, "
        f"text_hash TEXT, embedding vector({int(dim)})) ON COMMIT DROP"
    )
    if table.num_rows == 0:
        return
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    columns = [
        table.column(name).to_pylist() for name in ("chunk_id", "document_id", "text", "model", "text_hash")
    ]
    with con.cursor().copy(
        "COPY incoming (chunk_id, document_id, text, model, text_hash, embedding) "
        "FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "text", "text", "text", "text", "vector"])
        for i, vector in enumerate(vectors):
            copy.write_row(
                [*(column[i] for column in columns), np.ascontiguousarray(vector, dtype=np.float32)]
            )


def build_pg_index(
    rows: pa.Table | duckdb.DuckDBPyRelation,
    settings: BackendSettings | None = None,
    *,
    prune: bool = False,
) -> IndexStats:
    """Upsert ``rows`` into the Postgres index (only new or changed rows are written).

    ``prune=True`` also deletes chunks absent from ``rows`` (pass the full source table then).
    """
    started = time.perf_counter()
    resolved = _settings(settings)
    table, rows_dim = normalize_rows(rows)
    location = index_location(resolved)
    with connect_index(resolved) as con, con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(location.encode()),))
        index_dim = int(read_meta(con).get("dim") or 0) or None
        if index_dim and rows_dim and index_dim != rows_dim:
            raise DimensionMismatchError(
                f"rows have {rows_dim}-d embeddings, the index {location} {index_dim}-d: one index holds one "
                "vector space (use another HARVEST_POSTGRES_SCHEMA for another model or dimension)"
            )
        dim = index_dim or rows_dim
        if dim is None:
            raise IndexNotFoundError(f"no rows and no index at {location}: nothing to build")
        _create(con, resolved.postgres_schema, dim)
        _stage(con, table, dim)
        inserted = con.execute(
            f"""INSERT INTO {CHUNKS_TABLE} AS c (chunk_id, document_id, text, model, text_hash, embedding)
            SELECT DISTINCT ON (chunk_id) chunk_id, document_id, text, model, text_hash, embedding
            FROM incoming ORDER BY chunk_id
            ON CONFLICT (chunk_id) DO UPDATE SET document_id = excluded.document_id, text = excluded.text,
                model = excluded.model, text_hash = excluded.text_hash, embedding = excluded.embedding,
                indexed_at = now()
            WHERE (c.document_id, c.text, c.model, c.text_hash)
                IS DISTINCT FROM (excluded.document_id, excluded.text, excluded.model, excluded.text_hash)
            RETURNING (xmax = 0)"""
        ).fetchall()
        added = sum(1 for (fresh,) in inserted if fresh)
        _create_search_indexes(con)
        removed = 0
        if prune:
            cursor = con.execute(
                f"DELETE FROM {CHUNKS_TABLE} c WHERE NOT EXISTS "
                "(SELECT 1 FROM incoming i WHERE i.chunk_id = c.chunk_id)"
            )
            removed = cursor.rowcount
        total_row = con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE}").fetchone()
        models = [
            r[0] for r in con.execute(f"SELECT DISTINCT model FROM {CHUNKS_TABLE} WHERE model IS NOT NULL")
        ]
        total = int(total_row[0]) if total_row else 0
        meta = {
            "dim": str(dim),
            "models": ",".join(sorted(models)),
            "rows": str(total),
            "built_at": str(time.time()),
        }
        for key, value in meta.items():
            con.execute(
                f"INSERT INTO {META_TABLE} VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
    changed = len(inserted) + removed
    return IndexStats(
        path=location,
        dim=dim,
        total_rows=total,
        rows_added=added,
        rows_replaced=len(inserted) - added,
        rows_removed=removed,
        rebuilt=False,
        duration_s=time.perf_counter() - started,
        hnsw="in_place" if changed else "none",
    )
