"""The RAG index file layout: one table of embedded chunks plus a small key/value metadata table.

``chunks.embedding`` is a native ``FLOAT[dim]`` array (never JSON): HNSW needs it, and native arrays are
about 5x smaller and faster to scan than the JSON the seed guide stored. The dimension is fixed per index
file and recorded in ``rag_meta`` so a later load with another dimension fails loudly instead of silently
mixing vector spaces.
"""

from __future__ import annotations

import duckdb

CHUNKS_TABLE = "chunks"
META_TABLE = "rag_meta"
HNSW_INDEX = "chunks_embedding_hnsw"
FTS_SCHEMA = "fts_main_chunks"
# Keep digits and dashes-separated codes searchable: fts's default ``ignore`` drops every non-letter, which
# would turn "ERR-4471" into "err" and make exactly the rare codes hybrid search is for unfindable.
FTS_IGNORE = r"(\.|[^a-z0-9])+"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
# 128, not vss's default 64: at 1M x 1024 (benchmarks/results/vector_search_1m*.json) ef 64 gave
# recall@10 0.87 on one build and 0.985 on another (the parallel build is not deterministic); ef 128 gave
# 1.0 at p50 6.8 ms / p95 8.0 ms, no slower than 64 within noise.
HNSW_EF_SEARCH = 128


def create_tables(con: duckdb.DuckDBPyConnection, dim: int) -> None:
    """Create the chunk and metadata tables for vectors of ``dim`` dimensions (idempotent)."""
    con.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {CHUNKS_TABLE} (
            chunk_id VARCHAR NOT NULL,
            document_id VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            model VARCHAR,
            text_hash VARCHAR,
            embedding FLOAT[{int(dim)}] NOT NULL,
            indexed_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The metadata table as a dict (empty when the file has none)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [META_TABLE]
    ).fetchone()
    if not exists or not exists[0]:
        return {}
    return {k: v for k, v in con.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()}


def write_meta(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    for key, value in values.items():
        con.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES (?, ?)", [key, value])


def create_hnsw_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the HNSW index (cosine) in one parallel pass over the loaded table."""
    con.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    con.execute(
        f"CREATE INDEX {HNSW_INDEX} ON {CHUNKS_TABLE} USING HNSW (embedding) "
        f"WITH (metric = 'cosine', M = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )


def create_fts_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the BM25 index: fts never updates itself, so every load ends with this."""
    con.execute(
        f"PRAGMA create_fts_index('{CHUNKS_TABLE}', 'chunk_id', 'text', "
        f"stemmer = 'porter', stopwords = 'english', ignore = '{FTS_IGNORE}', overwrite = 1)"
    )


def create_search_indexes(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build HNSW and BM25 after a bulk load: both are far cheaper built once than maintained."""
    create_hnsw_index(con)
    create_fts_index(con)
