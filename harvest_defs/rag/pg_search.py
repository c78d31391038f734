"""Retrieval over the Postgres index: pgvector HNSW, ``tsvector`` keywords, fused like ``search.py``.

The backend-free parts (``Hit``, reciprocal rank fusion, the modes) stay in ``harvest_defs.rag.search``;
this module is only the per-backend SQL it calls. Choices:
- The query vector is a bound parameter (pgvector's adapter sends the binary form: no list-binding cost).
- Unfiltered top-k is ``ORDER BY embedding <=> q LIMIT k`` (the HNSW index, ``hnsw.ef_search`` raised to
  at least k). Filtered or ``exact`` queries add ``+ 0`` to the distance, which the planner cannot serve
  from the index, so they scan exactly: pgvector 0.6 filters *after* the index scan and could return fewer
  than k rows (iterative scans arrive in 0.8).
- Keywords: BM25 (k1 1.2, b 0.75, as DuckDB's fts) computed in SQL over the stored ``tsvector``. The GIN
  index finds the rows holding *any* of the query's stemmed terms; those rows hold every occurrence of
  every term, so their term counts are the document frequencies. Why not ``ts_rank_cd``: it has no IDF, so a
  rare name ("Brightbook") weighs no more than "use" and keyword-heavy questions lose their document
  (measured on the sample corpus: q11 fell out of the hybrid top 3). Document length is the number of
  distinct lexemes (what ``length(tsvector)`` gives), close enough for ranking.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from harvest_defs.rag.index import DimensionMismatchError
from harvest_defs.rag.pg_index import CHUNKS_TABLE, TEXT_SEARCH_CONFIG, read_meta
from harvest_defs.rag.schema import HNSW_EF_SEARCH
from harvest_defs.rag.search import KINDS, Filters, Hit, where_clause


@functools.cache
def _stopwords() -> list[str]:
    """DuckDB fts's English stop list, dropped from queries (Postgres's own list is much shorter: with
    it, words like "use" match most documents and push the rare term's document out of the hybrid top 3)."""
    lines = (Path(__file__).with_name("stopwords_english.txt")).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def _any_array(column: str, values: list[str]) -> tuple[str, list[object]]:
    """Postgres's ``column = ANY(%s)``: the values as one array parameter."""
    return f"{column} = ANY(%s)", [values]


def _where(filters: Filters | None) -> tuple[str, list[object]]:
    return where_clause(filters, _any_array)


def has_chunks(con: psycopg.Connection[Any]) -> bool:
    """True when the index holds passage rows (``chunk_embeddings``) beside the summary rows."""
    if con.execute("SELECT to_regclass(%s)", (CHUNKS_TABLE,)).fetchone() == (None,):
        return False
    row = con.execute(f"SELECT EXISTS (SELECT 1 FROM {CHUNKS_TABLE} WHERE {KINDS['chunk']})").fetchone()
    return bool(row and row[0])


def _query_vector(con: psycopg.Connection[Any], vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    dim = read_meta(con).get("dim")
    if dim and int(dim) != vector.shape[0]:
        raise DimensionMismatchError(
            f"query embedding has {vector.shape[0]} dimensions, the index {dim}: embed the query with "
            "the index's model and output_dimension"
        )
    return vector


def vector_search(
    con: psycopg.Connection[Any],
    vector: np.ndarray,
    k: int = 5,
    filters: Filters | None = None,
    *,
    exact: bool = False,
) -> list[Hit]:
    """Top-k by cosine similarity: HNSW unless ``exact`` or filtered (then an exact scan)."""
    query = _query_vector(con, vector)
    where, params = _where(filters)
    brute_force = exact or bool(where)
    distance = "(embedding <=> %s)" + (" + 0" if brute_force else "")
    order = "distance, chunk_id" if brute_force else "distance"
    sql = (
        f"SELECT chunk_id, document_id, text, {distance} AS distance FROM {CHUNKS_TABLE} "
        f"{'WHERE ' + where if where else ''} ORDER BY {order} LIMIT {int(k)}"
    )
    with con.transaction():
        con.execute(f"SET LOCAL hnsw.ef_search = {min(max(HNSW_EF_SEARCH, int(k)), 1000)}")
        rows = con.execute(sql, [query, *params]).fetchall()
    return [Hit(r[0], r[1], r[2], 1.0 - float(r[3]), vector_rank=i) for i, r in enumerate(rows, 1)]


def exact_search(
    con: psycopg.Connection[Any], vector: np.ndarray, k: int = 5, filters: Filters | None = None
) -> list[Hit]:
    """Reference top-k: an exact cosine scan over every (filtered) row."""
    return vector_search(con, vector, k, filters, exact=True)


def keyword_search(
    con: psycopg.Connection[Any], query: str, k: int = 5, filters: Filters | None = None
) -> list[Hit]:
    """Top-k by BM25 over the chunk text (see the module docstring), any query term matching."""
    where, params = _where(filters)
    rows = con.execute(
        f"""WITH terms AS (
            SELECT DISTINCT s.lexeme FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) w(word),
            LATERAL unnest(tsvector_to_array(to_tsvector(%s, w.word))) s(lexeme) WHERE w.word <> ALL(%s)),
        q AS (SELECT NULLIF(string_agg(quote_literal(lexeme), ' | '), '')::tsquery AS q FROM terms),
        stats AS (SELECT count(*)::float8 AS n, coalesce(avg(length(tsv)), 1)::float8 AS avgdl
                  FROM {CHUNKS_TABLE}),
        cand AS (SELECT c.chunk_id, c.tsv FROM {CHUNKS_TABLE} c, q WHERE c.tsv @@ q.q),
        tf AS (SELECT cand.chunk_id, u.lexeme, coalesce(array_length(u.positions, 1), 1)::float8 AS tf,
                      length(cand.tsv)::float8 AS dl
               FROM cand, unnest(cand.tsv) u WHERE u.lexeme IN (SELECT lexeme FROM terms)),
        df AS (SELECT lexeme, count(*)::float8 AS df FROM tf GROUP BY lexeme),
        scored AS (
            SELECT tf.chunk_id, sum(ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5))
                   * tf.tf * 2.2 / (tf.tf + 1.2 * (0.25 + 0.75 * tf.dl / stats.avgdl))) AS score
            FROM tf JOIN df USING (lexeme), stats GROUP BY tf.chunk_id)
        SELECT c.chunk_id, c.document_id, c.text, s.score FROM scored s JOIN {CHUNKS_TABLE} c USING (chunk_id)
        {"WHERE " + where if where else ""} ORDER BY s.score DESC, c.chunk_id LIMIT {int(k)}""",
        [query, TEXT_SEARCH_CONFIG, _stopwords(), *params],
    ).fetchall()
    return [Hit(r[0], r[1], r[2], float(r[3]), keyword_rank=i) for i, r in enumerate(rows, 1)]
