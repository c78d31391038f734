"""Retrieval over the RAG index: HNSW vectors, BM25 keywords, or both fused with reciprocal rank fusion.

Why each choice (measured in dlt_vectors_measured.md §5 and benchmarks/results/index_build.json):
- Unfiltered vector queries take candidates from the usearch graph beside the file (``rag.ann``) and rank
  them in DuckDB by the exact distance; an index built before the sidecar existed still uses vss's HNSW.
- The graph path's re-rank is one statement with the query vector cross-joined from a one-row Arrow
  table (``ann.rerank``), on a reader connection's single thread (``rag.threads``): measured at 200k and
  1M (benchmarks/query_latency.py), a ``SET VARIABLE`` statement, a ``rag_meta`` read per query and the
  parallel pipeline start had cost more than the 12-row fetch itself. The scans (exact, vss) still pass
  the vector with ``SET VARIABLE qv = (SELECT q FROM <arrow>)`` and ``getvariable('qv')``: binding a Python
  list as a parameter costs 0.5-1 s per query at 1024-d, and a scalar subquery drops vss's HNSW plan.
- Filtered queries never use HNSW: vss 1.5.5 pushes the LIMIT into the index and filters afterwards, so
  ``WHERE ... ORDER BY distance LIMIT k`` silently returns too few (even 0) rows. They use the exact scan.
- The exact scan (``exact=True`` / ``exact_search``) is brute-force ``array_cosine_distance`` over every row:
  the reference the HNSW results are checked against. ``+ 0.0`` on the distance stops the optimizer from
  rewriting it into an index scan.
- Hybrid = RRF over the top ``candidates`` of each list (``sum 1/(60 + rank)``): rank-based, so BM25 scores
  and cosine similarities need no calibration against each other. It rescues queries whose answer hinges
  on a rare token (an error code, a name) that a whole-document embedding dilutes.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import duckdb
import numpy as np

from harvest_defs.rag import ann
from harvest_defs.rag.embedders import QueryEmbedder, index_query_embedder
from harvest_defs.rag.index import DimensionMismatchError, open_index
from harvest_defs.rag.schema import CHUNKS_TABLE, FTS_SCHEMA, HNSW_EF_SEARCH, read_meta
from harvest_defs.rag.threads import all_cores

Mode = Literal["hybrid", "vector", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "vector", "keyword")
Filters = dict[str, str | Sequence[str]]
FILTERABLE_COLUMNS = frozenset({"chunk_id", "document_id", "model"})
RRF_K = 60
# ``filters={"kind": "chunk"}`` keeps passages, ``"summary"`` the one-row-per-document summaries: a
# passage's id is ``<document_id>--<hex>`` (rag/chunking.py), a summary row's id is its document id.
# Candidates per wanted hit when a filter post-filters the graph's answers (passages are most rows).
FILTER_OVERSAMPLE = 10

KINDS = {"summary": "chunk_id = document_id", "chunk": "chunk_id <> document_id"}


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. ``score`` is higher-is-better: cosine similarity, BM25, or the RRF sum by mode."""

    chunk_id: str
    document_id: str
    text: str
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "score": self.score,
            "vector_rank": self.vector_rank,
            "keyword_rank": self.keyword_rank,
            "text": self.text,
        }


def _in_placeholders(column: str, values: list[str]) -> tuple[str, list[object]]:
    """DuckDB's ``column IN (?, ?, ...)``: one placeholder a value."""
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def where_clause(
    filters: Filters | None,
    column_clause: Callable[[str, list[str]], tuple[str, list[object]]] = _in_placeholders,
) -> tuple[str, list[object]]:
    """The SQL condition and parameters for ``filters``, checked the same on every backend (``kind``
    and the filterable columns); ``column_clause`` writes one column's test in the backend's dialect."""
    if not filters:
        return "", []
    clauses: list[str] = []
    params: list[object] = []
    for column, value in filters.items():
        if column == "kind":
            kinds = [value] if isinstance(value, str) else list(value)
            unknown = [v for v in kinds if v not in KINDS]
            if unknown:
                raise ValueError(f"kind must be one of {sorted(KINDS)}, got {unknown}")
            clauses.append("(" + " OR ".join(KINDS[v] for v in kinds) + ")")
            continue
        if column not in FILTERABLE_COLUMNS:
            raise ValueError(f"cannot filter on {column!r}; filterable: {sorted(FILTERABLE_COLUMNS)}")
        clause, values = column_clause(column, [value] if isinstance(value, str) else list(value))
        clauses.append(clause)
        params.extend(values)
    return " AND ".join(clauses), params


_DIM_OF: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, int | None] = weakref.WeakKeyDictionary()


def index_dim(con: duckdb.DuckDBPyConnection) -> int | None:
    """The index's embedding dimension (None before the first build), remembered for a read-only
    connection: reading ``rag_meta`` is two statements, ~1.3 ms of every query on a loaded machine."""
    if con in _DIM_OF:
        return _DIM_OF[con]
    value = read_meta(con).get("dim")
    dim = int(value) if value else None
    if ann.is_read_only(con):
        _DIM_OF[con] = dim
    return dim


def check_query_vector(con: duckdb.DuckDBPyConnection, vector: np.ndarray) -> np.ndarray:
    """``vector`` as flat float32, checked against the index's dimension."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    dim = index_dim(con)
    if dim is not None and dim != vector.shape[0]:
        raise DimensionMismatchError(
            f"query embedding has {vector.shape[0]} dimensions, the index {dim}: embed the query with "
            "the index's model and output_dimension"
        )
    return vector


def set_query_vector(con: duckdb.DuckDBPyConnection, vector: np.ndarray) -> int:
    """Bind ``vector`` to the session variable ``qv`` as ``FLOAT[dim]`` (checked against the index)."""
    vector = check_query_vector(con, vector)
    _bind_query_vector(con, vector)
    return int(vector.shape[0])


def _bind_query_vector(con: duckdb.DuckDBPyConnection, vector: np.ndarray) -> None:
    """``qv`` := ``vector`` (already checked), for the scans' ``getvariable('qv')``."""
    with ann.query_vector_view(con, vector):
        con.execute(f"SET VARIABLE qv = (SELECT q FROM {ann.QUERY_VIEW})")


def vector_search_sql(k: int, where: str = "", *, exact: bool = False) -> str:
    """The top-k SQL. The HNSW form must stay exactly ``ORDER BY distance LIMIT k`` on one table: a
    tie-break column or a filter makes the planner fall back to (or, with WHERE, misuse) the index."""
    brute_force = exact or bool(where)
    distance = "array_cosine_distance(embedding, getvariable('qv'))" + (" + 0.0" if brute_force else "")
    order = "distance, chunk_id" if brute_force else "distance"
    return (
        f"SELECT chunk_id, document_id, text, {distance} AS distance FROM {CHUNKS_TABLE} "
        f"{'WHERE ' + where if where else ''} ORDER BY {order} LIMIT {int(k)}"
    )


def vector_search(
    con: duckdb.DuckDBPyConnection,
    vector: np.ndarray,
    k: int = 5,
    filters: Filters | None = None,
    *,
    exact: bool = False,
) -> list[Hit]:
    """Top-k by cosine similarity: the HNSW graph unless ``exact``; a brute-force scan when asked, or when
    a filter leaves fewer than k of the graph's (oversampled) candidates."""
    vector = check_query_vector(con, vector)
    where, params = where_clause(filters)
    graph = None if exact else ann.graph_for(con)
    if graph is not None:  # the usearch graph beside the file picks candidates, DuckDB ranks them exactly
        # A filter (``kind: chunk`` on every `harvest ask` over passages) post-filters the candidates, so
        # take more of them; only when too few pass does the query fall back to the exact scan.
        keys = ann.candidates(graph, vector, k, oversample=FILTER_OVERSAMPLE if where else ann.OVERSAMPLE)
        rows = ann.rerank(con, vector, keys, k, where, params)
        if not where or len(rows) >= k or len(keys) >= len(graph):
            return [Hit(r[0], r[1], r[2], 1.0 - float(r[3]), vector_rank=i) for i, r in enumerate(rows, 1)]
    _bind_query_vector(con, vector)  # checked above
    if not (exact or where):  # an index built before the sidecar: vss's persisted HNSW index
        con.execute(f"SET hnsw_ef_search = {max(HNSW_EF_SEARCH, k)}")
        # DuckDB's late materialization would join the k index hits back to a full scan of the table
        # (measured: 150 ms instead of a few ms at 100k rows); the index scan already carries the rows.
        con.execute("SET late_materialization_max_rows = 0")
    try:
        with all_cores(con):  # a full scan (or vss's index scan): not a point query
            rows = con.execute(vector_search_sql(k, where, exact=exact), params).fetchall()
    finally:
        con.execute("RESET late_materialization_max_rows")
    return [Hit(r[0], r[1], r[2], 1.0 - float(r[3]), vector_rank=i) for i, r in enumerate(rows, 1)]


def exact_search(
    con: duckdb.DuckDBPyConnection, vector: np.ndarray, k: int = 5, filters: Filters | None = None
) -> list[Hit]:
    """Reference top-k: brute-force ``array_cosine_distance`` over every (filtered) row."""
    return vector_search(con, vector, k, filters, exact=True)


def keyword_search(
    con: duckdb.DuckDBPyConnection, query: str, k: int = 5, filters: Filters | None = None
) -> list[Hit]:
    """Top-k by BM25 over the chunk text (porter stemming, English stop words, digits kept)."""
    where, params = where_clause(filters)
    with all_cores(con):  # BM25 scores every row: a scan
        rows = con.execute(
            f"SELECT chunk_id, document_id, text, score FROM ("
            f"  SELECT *, {FTS_SCHEMA}.match_bm25(chunk_id, ?) AS score FROM {CHUNKS_TABLE}"
            f") WHERE score IS NOT NULL {'AND ' + where if where else ''} "
            f"ORDER BY score DESC, chunk_id LIMIT {int(k)}",
            [query, *params],
        ).fetchall()
    return [Hit(r[0], r[1], r[2], float(r[3]), keyword_rank=i) for i, r in enumerate(rows, 1)]


def reciprocal_rank_fusion(
    vector_hits: list[Hit], keyword_hits: list[Hit], k: int, rrf_k: int = RRF_K
) -> list[Hit]:
    """Fuse two ranked lists: score = sum of 1/(rrf_k + rank) over the lists a chunk appears in."""
    fused: dict[str, Hit] = {}
    scores: dict[str, float] = {}
    for hit in vector_hits:
        fused[hit.chunk_id] = replace(hit, keyword_rank=None)
        scores[hit.chunk_id] = 1.0 / (rrf_k + (hit.vector_rank or 0))
    for hit in keyword_hits:
        base = fused.get(hit.chunk_id, replace(hit, vector_rank=None))
        fused[hit.chunk_id] = replace(base, keyword_rank=hit.keyword_rank)
        scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (rrf_k + (hit.keyword_rank or 0))
    ranked = sorted(fused, key=lambda cid: (-scores[cid], fused[cid].vector_rank or 1 << 30, cid))
    return [replace(fused[cid], score=scores[cid]) for cid in ranked[:k]]


def _backend_sql(con: Any) -> ModuleType:
    """The per-backend SQL for ``con`` (``vector_search``, ``keyword_search``, ``read_meta``): this module's
    for a DuckDB connection, ``pg_search``'s for a Postgres one. The one place search branches on backend."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        return sys.modules[__name__]
    from harvest_defs.rag import pg_search

    return pg_search


def open_search_connection(rag_path: Path | str | None = None) -> Any:
    """An index connection: the DuckDB file at ``rag_path``, or, with no path and
    ``HARVEST_BACKEND=postgres``, the Postgres index (``harvest ask``/``search`` and ``answer`` use this)."""
    if rag_path is None:
        from harvest_defs.harvest.backends import BackendSettings

        settings = BackendSettings.resolve()
        if settings.name == "postgres":
            from harvest_defs.rag.pg_index import connect_index

            return connect_index(settings)
    return open_index(rag_path)


def has_chunks(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the index holds passage rows (not only one summary row per document)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return bool(_backend_sql(con).has_chunks(con))
    row = con.execute(f"SELECT EXISTS (SELECT 1 FROM {CHUNKS_TABLE} WHERE {KINDS['chunk']})").fetchone()
    return bool(row and row[0])


def search_connection(
    con: duckdb.DuckDBPyConnection | Any,
    query: str,
    embed_query: QueryEmbedder | None,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    *,
    candidates: int = 50,
    exact: bool = False,
) -> list[Hit]:
    """``search`` on an open index connection (lets callers reuse one connection for many queries)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    sql = _backend_sql(con)
    if mode == "keyword":
        return sql.keyword_search(con, query, k, filters)
    if embed_query is None:
        embed_query = index_query_embedder(sql.read_meta(con))
    vector = embed_query(query)
    if mode == "vector":
        return sql.vector_search(con, vector, k, filters, exact=exact)
    pool = max(candidates, k)
    return reciprocal_rank_fusion(
        sql.vector_search(con, vector, pool, filters, exact=exact),
        sql.keyword_search(con, query, pool, filters),
        k,
    )


def search(
    query: str,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    *,
    rag_path: Path | str | None = None,
    embed_query: QueryEmbedder | None = None,
    candidates: int = 50,
    exact: bool = False,
) -> list[Hit]:
    """Top-k chunks for ``query`` from the index at ``rag_path`` (default ``$HARVEST_HOME/rag.duckdb``).

    ``embed_query`` defaults to Voyage (``input_type="query"``) with the index's model and dimension;
    ``filters`` maps ``document_id`` / ``chunk_id`` / ``model`` to a value or list of values.
    """
    con = open_search_connection(rag_path)
    try:
        return search_connection(
            con, query, embed_query, k, mode, filters, candidates=candidates, exact=exact
        )
    finally:
        con.close()
