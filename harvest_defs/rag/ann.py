"""Approximate nearest neighbours: a usearch HNSW graph of half-precision vectors in a file beside the index.

Why not the vss extension's HNSW index (what the index used before): measured at 1M x 1024
(``benchmarks/results/vector_search_1m*.json``, ``index_build.json``) its build took 1,381-2,041 s and
peaked at 17 GB: vss keeps every vector as float32 inside the graph (4 GB), DuckDB keeps the table's
pages in its buffer pool while the graph is built (4 GB more), and the checkpoint serialises the graph
into DuckDB blocks (another copy). usearch is the library vss wraps; used directly, the graph holds float16
copies (2 GB at 1M), is built from the table in bounded Arrow batches, and is saved as one file that
readers memory-map (``view``): opening costs nothing and the pages are shared by every reader process.

The DuckDB table stays the source of truth (``FLOAT[dim]``, exact search, BM25, filters): the sidecar is
derived from it, keyed by ``chunks.ann_key`` (never reused), named in ``rag_meta.ann_file`` with a fresh name
per build so the atomic swap of the DuckDB file also swaps the graph a reader uses. The top candidates the
graph returns are re-ranked in DuckDB with the exact float32 ``array_cosine_distance``, so half precision
only affects which rows are candidates, never the distances users see. i8 was measured and rejected:
recall@10 0.79 at 100k with cosine, and slower to build than f16 on this CPU.
"""

from __future__ import annotations

import math
import os
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from usearch.index import Index

from harvest_defs.rag.schema import CHUNKS_TABLE, HNSW_EF_CONSTRUCTION, HNSW_INDEX, HNSW_M

KEY_COLUMN = "ann_key"
# An ART index on the key: the re-rank fetches ~20 rows by key, and without it DuckDB turns the IN list into
# a join over a full scan (measured at 300k x 1024: 819 ms a query; with it 4-18 ms on a loaded machine).
KEY_INDEX = "chunks_ann_key"
META_KEY = "ann_file"
DTYPE = "f16"
SUFFIX = ".usearch"
# Rows per Arrow batch read from DuckDB while the graph is built: 50k x 1024 floats = 200 MB in flight.
BATCH_ROWS = 50_000
# Candidates examined per insert while the graph is built (~80% of a 1M build's time). 64 was measured at
# 1M x 1024 (benchmarks/results/index_build_1m.json): graph 1,423 s on a loaded machine but recall@10 0.88
# near the data, under the 0.95 goal; 128 (vss's value) gave 1.0 at 200k, so 128 it stays.
EF_CONSTRUCTION = HNSW_EF_CONSTRUCTION
# Candidates the graph examines per query (usearch's expansion_search). 256, not the schema's 128 (vss and
# pgvector keep 128): at 1M x 1024 over 100 near queries (quiet machine, one built file) ef 128 gave recall@10
# 0.958 with some queries at 0 (the search settled in the wrong region), ef 256 gave 0.99 (min 0.9) and ef 512
# 0.993, with warm p50 4.6-5.9 ms at every setting (the graph search is <1 ms of a query; the rest is DuckDB).
GRAPH_EF_SEARCH = 256
# Candidates taken from the graph per query before the exact re-rank: ``OVERSAMPLE * k``, at least
# ``MIN_CANDIDATES``. Each candidate is a row DuckDB fetches, and in a fresh reader process each one loads a
# 256 KB block into the buffer pool (~64 page faults: the dominant cost of a cold query, measured at 200k
# and 1M in benchmarks/results/query_latency_1m.json). The float16 graph ranks so close to the exact float32
# order that re-ranking 10, 12, 15, 20 or 30 candidates gave the same recall@10 at 200k x 1024 (0.96 over 30
# near queries, one of them a graph miss); it was max(2k, 20).
OVERSAMPLE = 1.2
MIN_CANDIDATES = 12


def ensure_key_column(con: duckdb.DuckDBPyConnection) -> None:
    """Give ``chunks`` its ``ann_key`` column and a key on every row (a file from an older build has none).

    A vss HNSW index of an older build is dropped first: DuckDB refuses ALTER on an indexed table, and the
    sidecar replaces it.
    """
    con.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    con.execute(f"DROP INDEX IF EXISTS {KEY_INDEX}")  # recreated by create_key_index after the writes
    con.execute(f"ALTER TABLE {CHUNKS_TABLE} ADD COLUMN IF NOT EXISTS {KEY_COLUMN} BIGINT")
    missing = con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE} WHERE {KEY_COLUMN} IS NULL").fetchone()
    if missing and missing[0]:
        offset = next_key(con)
        con.execute(
            f"UPDATE {CHUNKS_TABLE} SET {KEY_COLUMN} = rowid + ? WHERE {KEY_COLUMN} IS NULL", [offset]
        )


def create_key_index(con: duckdb.DuckDBPyConnection) -> None:
    """The unique ART index on ``ann_key`` (built once after a load: ~1 s at 1M rows)."""
    con.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {KEY_INDEX} ON {CHUNKS_TABLE} ({KEY_COLUMN})")


def next_key(con: duckdb.DuckDBPyConnection) -> int:
    """The first key above every key in use (keys are never reused, so a stale graph cannot alias a row)."""
    row = con.execute(f"SELECT coalesce(max({KEY_COLUMN}), -1) + 1 FROM {CHUNKS_TABLE}").fetchone()
    return int(row[0]) if row else 0


def new_sidecar_path(index_path: Path) -> Path:
    """A fresh sidecar name beside the final index file (``rag.duckdb.ann-<id>.usearch``)."""
    return index_path.with_name(f"{index_path.name}.ann-{uuid.uuid4().hex[:12]}{SUFFIX}")


def _new_index(dim: int) -> Index:
    return Index(
        ndim=dim,
        metric="cos",
        dtype=DTYPE,
        connectivity=HNSW_M,
        expansion_add=EF_CONSTRUCTION,
        expansion_search=GRAPH_EF_SEARCH,
    )


def _add_rows(con: duckdb.DuckDBPyConnection, index: Index, dim: int, where: str = "") -> int:
    """Stream ``(ann_key, embedding)`` from the table into the graph in ``BATCH_ROWS`` batches.

    The reader streams (measured at 200k x 1024: RSS grows by one batch, not by the table; DuckDB's pool
    is capped by the caller's ``memory_limit``), and each batch is handed over as contiguous float16, the
    graph's own type (half the bytes in flight; usearch would convert each vector anyway).
    """
    where_sql = f"WHERE {where}" if where else ""
    reader = con.execute(f"SELECT {KEY_COLUMN}, embedding FROM {CHUNKS_TABLE} {where_sql}").to_arrow_reader(
        BATCH_ROWS
    )
    added = 0
    for batch in reader:
        if not batch.num_rows:
            continue
        keys = batch.column(0).to_numpy().astype(np.uint64)
        embedding = batch.column(1)
        assert isinstance(embedding, pa.FixedSizeListArray)
        vectors = np.ascontiguousarray(embedding.flatten().to_numpy().reshape(-1, dim), dtype=np.float16)
        del batch, embedding
        index.add(keys, vectors, threads=os.cpu_count() or 1)
        added += len(keys)
    return added


def build_sidecar(con: duckdb.DuckDBPyConnection, dim: int, target: Path) -> Path | None:
    """Build the graph over every row of ``chunks`` into ``target``; None (no file) for an empty table."""
    total_row = con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE}").fetchone()
    total = int(total_row[0]) if total_row else 0
    if not total:
        return None
    index = _new_index(dim)
    _add_rows(con, index, dim)
    index.save(str(target))
    return target


def update_sidecar(
    con: duckdb.DuckDBPyConnection,
    dim: int,
    source: Path,
    target: Path,
    removed_keys: list[int],
    first_new_key: int,
) -> Path | None:
    """The graph at ``source`` less ``removed_keys`` plus the rows keyed ``>= first_new_key``, saved to
    ``target`` (the old file is never written: readers may have it mapped)."""
    index = Index.restore(str(source))
    if index is None:
        return build_sidecar(con, dim, target)
    if removed_keys:
        index.remove(np.asarray(removed_keys, dtype=np.uint64))
    _add_rows(con, index, dim, f"{KEY_COLUMN} >= {int(first_new_key)}")
    if len(index) == 0:
        return None
    index.save(str(target))
    return target


def sidecar_of(
    con: duckdb.DuckDBPyConnection, meta: dict[str, str], directory: Path | None = None
) -> Path | None:
    """The sidecar file the connection's index names (beside its file, or in ``directory``), or None (no
    graph yet, an older build, or the file is gone)."""
    name = meta.get(META_KEY)
    if not name:
        return None
    if directory is None:
        row = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        if not row or not row[0]:
            return None
        directory = Path(row[0]).parent
    path = directory / name
    return path if path.is_file() else None


_GRAPH_OF: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Index | None] = weakref.WeakKeyDictionary()


def is_read_only(con: duckdb.DuckDBPyConnection) -> bool:
    """True for a read-only connection: its file cannot change under it (a rebuild renames a new file over
    the path; this connection keeps the old one), so what it reads once may be remembered."""
    mode = con.execute("SELECT current_setting('access_mode')").fetchone()
    return bool(mode and str(mode[0]).lower() == "read_only")


def graph_for(con: duckdb.DuckDBPyConnection) -> Index | None:
    """The graph of the connection's index, opened (a memory-mapped view), or None: scan instead.

    Remembered for a read-only connection (``is_read_only``), so the metadata look-ups (~2 ms on a loaded
    machine) are paid once, and the mapping outlives the file's deletion two rebuilds later.
    """
    if con in _GRAPH_OF:
        return _GRAPH_OF[con]
    from harvest_defs.rag.schema import read_meta

    path = sidecar_of(con, read_meta(con))
    graph = open_view(path) if path is not None else None
    if is_read_only(con):
        _GRAPH_OF[con] = graph
    return graph


@lru_cache(maxsize=4)
def _view(path: str, mtime_ns: int) -> Index:
    index = Index.restore(path, view=True)
    if index is None:
        raise ValueError(f"{path} is not a usearch index")
    return index


def open_view(path: Path) -> Index | None:
    """A memory-mapped view of a sidecar, cached per file version; None when it is gone or unreadable
    (removed between the metadata look-up and the open: the caller scans the table instead)."""
    try:
        return _view(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError, RuntimeError):
        return None


def candidates(
    graph: Index | Path, vector: np.ndarray, k: int, *, oversample: float = OVERSAMPLE
) -> list[int]:
    """Keys of the graph's nearest ``max(ceil(oversample * k), MIN_CANDIDATES)`` candidates for ``vector``."""
    index = open_view(graph) if isinstance(graph, Path) else graph
    if index is None:
        raise FileNotFoundError(f"no usearch graph at {graph}")
    count = max(math.ceil(oversample * k), MIN_CANDIDATES)
    if index.expansion_search < max(GRAPH_EF_SEARCH, count):
        index.expansion_search = max(GRAPH_EF_SEARCH, count)  # type: ignore[misc]  # (the stub lacks the setter)
    matches = index.search(np.asarray(vector, dtype=np.float32), count)
    return [int(key) for key in matches.keys]


def remove_stale_sidecars(index_path: Path, keep: set[str]) -> None:
    """Delete sidecars of ``index_path`` not named in ``keep`` (the current and the previous graph)."""
    for old in index_path.parent.glob(f"{index_path.name}.ann-*{SUFFIX}"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


# The query vector's one-row Arrow table, joined into the re-rank statement under this name.
QUERY_VIEW = "_rag_query_vector"


def rerank_sql(keys: list[int], k: int, where: str = "") -> str:
    """Top-k of the graph's candidates by the exact float32 distance to ``QUERY_VIEW.q`` (one statement).

    Keys are literal integers so DuckDB answers the IN list from the ART index on ``ann_key`` (a point
    lookup per key) instead of scanning the table. ``where`` (a search filter) post-filters them. The query
    vector is a one-row table cross-joined in, not a ``SET VARIABLE``: measured at 200k x 1024
    (``benchmarks/query_latency.py``), the variable cost a statement of its own plus ``getvariable``'s
    binding and constant folding of 1024 floats in the re-rank (~3 ms CPU a query on a loaded machine).
    """
    listed = ", ".join(str(int(key)) for key in keys) or "NULL"
    extra = f" AND ({where})" if where else ""
    return (
        "SELECT chunk_id, document_id, text, "
        f"array_cosine_distance(embedding, {QUERY_VIEW}.q) AS distance "
        f"FROM {CHUNKS_TABLE}, {QUERY_VIEW} WHERE {KEY_COLUMN} IN ({listed}){extra} "
        f"ORDER BY distance, chunk_id LIMIT {int(k)}"
    )


def rerank(
    con: duckdb.DuckDBPyConnection,
    vector: np.ndarray,
    keys: list[int],
    k: int,
    where: str = "",
    params: list[object] | None = None,
) -> list[tuple[str, str, str, float]]:
    """``(chunk_id, document_id, text, distance)`` of the best ``k`` of ``keys``, ranked in DuckDB by the
    exact float32 cosine distance to ``vector`` (the table's vectors, never the graph's float16 copies)."""
    with query_vector_view(con, vector):
        return con.execute(rerank_sql(keys, k, where), params or []).fetchall()


@contextmanager
def query_vector_view(con: duckdb.DuckDBPyConnection, vector: np.ndarray) -> Iterator[None]:
    """``vector`` as ``QUERY_VIEW`` (one row, column ``q`` of ``FLOAT[dim]``) for the statements inside:
    the re-rank joins it, and ``search.set_query_vector`` copies it into the ``qv`` variable."""
    flat = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    con.register(
        QUERY_VIEW, pa.table({"q": pa.FixedSizeListArray.from_arrays(pa.array(flat), flat.shape[0])})
    )
    try:
        yield
    finally:
        con.unregister(QUERY_VIEW)
