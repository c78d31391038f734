"""Build the RAG index file incrementally and swap it in atomically.

Input: rows of ``(chunk_id, document_id, text, model, text_hash, embedding FixedSizeList<float32>[dim])`` as
an Arrow table or a DuckDB relation, so the Dagster ``rag_index`` asset can feed it straight from the
warehouse. Only new or changed rows (by chunk_id + text_hash + model + document_id) are written; a re-run
with the same rows touches nothing.

Why build into a copy and ``os.replace`` it: readers (``harvest ask`` / ``search``) open the index
read-only, and DuckDB refuses a read-only open while another process holds the file for writing. Writing a
sibling file and renaming it over the old one means a reader always opens a complete index, old or new,
and never waits for or fails on a rebuild. A crash mid-build only loses the temporary copy.

The HNSW graph is a usearch file beside the index (``rag.ann``, chosen by the numbers in
``benchmarks/results/index_build.json``): a full build streams the table into a new graph; a small change,
up to ``INCREMENTAL_MAX_SHARE`` of the rows (the usual re-run after a few edits), goes into a copy of the
previous graph (deleted keys removed, new rows added). Either way the graph gets a fresh file name, stored
in ``rag_meta`` of the new DuckDB file, so the rename swaps both. A relation is spooled to Parquet in
batches (``rag.incoming``) and DuckDB runs under ``BUILD_MEMORY_LIMIT``. The BM25 index is rebuilt after
every load (fts never updates itself), and ALPRD compression is disabled (it grows float arrays 1.6x and
slows scans).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from harvest_defs.rag import ann
from harvest_defs.rag.clock import BuildClock
from harvest_defs.rag.extensions import connect
from harvest_defs.rag.incoming import Incoming, Spooled, attach, spool

# Re-exported: callers import these from here (the index's public face).
from harvest_defs.rag.rows import OPTIONAL_COLUMNS as OPTIONAL_COLUMNS
from harvest_defs.rag.rows import REQUIRED_COLUMNS as REQUIRED_COLUMNS
from harvest_defs.rag.rows import DimensionMismatchError as DimensionMismatchError
from harvest_defs.rag.rows import normalize_rows as normalize_rows
from harvest_defs.rag.schema import (
    CHUNKS_TABLE,
    create_fts_index,
    create_tables,
    read_meta,
    write_meta,
)
from harvest_defs.rag.threads import use_point_query_threads

log = logging.getLogger(__name__)
INDEX_FILENAME = "rag.duckdb"


class IndexNotFoundError(FileNotFoundError):
    """No index file at the given path: build it first (``rag_index`` asset)."""


@dataclass(frozen=True)
class IndexStats:
    """What one ``build_index`` call did."""

    path: str
    dim: int
    total_rows: int
    rows_added: int
    rows_replaced: int
    rows_removed: int
    rebuilt: bool
    duration_s: float
    # "in_place": the changes went into the existing HNSW graph; "rebuilt": it was built anew; "none".
    hnsw: str = "none"
    # Seconds per build step (spool, copy, diff, write, keys, graph, bm25, checkpoint): what a build costs.
    phases: dict[str, float] = field(default_factory=dict)
    # Per step: the process's RSS at its end and its peak so far (MB), to see which step holds the memory.
    memory: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def default_index_path() -> Path:
    """``$HARVEST_HOME/rag.duckdb`` (``./.harvest`` when HARVEST_HOME is unset)."""
    return Path(os.environ.get("HARVEST_HOME", ".harvest")) / INDEX_FILENAME


# New or changed rows: no indexed row has the same id with the same text, model and document.
_INCOMING_SQL = """
SELECT chunk_id, document_id, coalesce(text, '') AS text, model,
       coalesce(text_hash, sha256(coalesce(text, ''))) AS text_hash, embedding
FROM incoming
QUALIFY row_number() OVER (PARTITION BY chunk_id) = 1
"""
_CHANGED_SQL = f"""
SELECT r.* FROM ({_INCOMING_SQL}) AS r
WHERE NOT EXISTS (
    SELECT 1 FROM {CHUNKS_TABLE} AS c
    WHERE c.chunk_id = r.chunk_id AND c.text_hash = r.text_hash
      AND c.model IS NOT DISTINCT FROM r.model AND c.document_id = r.document_id
)
"""


def _existing_dim(con: duckdb.DuckDBPyConnection) -> int | None:
    value = read_meta(con).get("dim")
    return int(value) if value else None


def _check_dim(index_dim: int | None, rows_dim: int | None, path: Path) -> int:
    if index_dim is not None and rows_dim is not None and index_dim != rows_dim:
        raise DimensionMismatchError(
            f"index {path.name} holds {index_dim}-dimensional embeddings, rows have {rows_dim}: "
            "use the same model/output_dimension, or build a new index file"
        )
    dim = index_dim if index_dim is not None else rows_dim
    if dim is None:
        raise DimensionMismatchError("cannot infer the embedding dimension from zero rows of a variable list")
    return dim


def _pending_changes(path: Path, incoming: Incoming, prune: bool) -> int | None:
    """Rows to add/replace/remove against the current file, or None when there is no usable file."""
    con = connect(path, read_only=True)
    try:
        dim = _existing_dim(con)
        if dim is None:
            return None
        attach(con, incoming, dim)
        changed = con.execute(f"SELECT count(*) FROM ({_CHANGED_SQL})").fetchone()
        return (changed[0] if changed else 0) + (_removed_count(con) if prune else 0)
    finally:
        con.close()


def build_index(
    rows: pa.Table | duckdb.DuckDBPyRelation | Spooled,
    path: Path | str | None = None,
    *,
    prune: bool = False,
) -> IndexStats:
    """Add new/changed rows to the index at ``path`` (default ``$HARVEST_HOME/rag.duckdb``).

    ``prune=True`` also removes chunks absent from ``rows`` (use when ``rows`` is the full source table).
    A relation is spooled to Parquet first (open its connection with ``incoming.source_connection`` so
    its buffer pool stays small); ``Spooled`` is such a file written beforehand (the caller deletes it).
    Raises DimensionMismatchError when the rows' dimension differs from the index's.
    """
    started = time.monotonic()
    path = Path(path) if path is not None else default_index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    spooled = path.with_name(f".{path.name}.incoming-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet")
    try:
        return _build(rows, path, prune, started, spooled)
    finally:
        spooled.unlink(missing_ok=True)


def _build(
    rows: pa.Table | duckdb.DuckDBPyRelation | Spooled, path: Path, prune: bool, started: float, spooled: Path
) -> IndexStats:
    clock = BuildClock()
    incoming: Incoming
    if isinstance(rows, pa.Table):
        incoming, rows_dim = normalize_rows(rows)
    elif isinstance(rows, Spooled):
        incoming, rows_dim = rows.path, rows.dim
    else:  # a relation is never materialised whole: batches go to a Parquet file beside the index
        spooled_rows = spool(rows, spooled)
        incoming, rows_dim = spooled_rows.path, spooled_rows.dim
        log.info("index build: %d source rows spooled to %s", spooled_rows.rows, spooled.name)
    clock.lap("spool")
    index_dim: int | None = None
    if path.exists():
        con = connect(path, read_only=True)
        try:
            index_dim = _existing_dim(con)
            total_before = (
                con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE}").fetchone() if index_dim else None
            )
        finally:
            con.close()
        dim = _check_dim(index_dim, rows_dim, path)
        pending = _pending_changes(path, incoming, prune) if index_dim else None
        if pending == 0:
            total = total_before[0] if total_before else 0
            return IndexStats(
                str(path),
                dim,
                total,
                0,
                0,
                0,
                False,
                round(time.monotonic() - started, 3),
                phases=clock.phases,
                memory=clock.memory,
            )
    else:
        dim = _check_dim(None, rows_dim, path)

    building = path.with_name(f".{path.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    if index_dim is not None:
        shutil.copyfile(path, building)
    clock.lap("copy")
    sidecar = ann.new_sidecar_path(path)
    try:
        written = _write(building, incoming, dim, prune, sidecar, clock)
        os.replace(building, path)
    except BaseException:
        sidecar.unlink(missing_ok=True)
        raise
    finally:
        for leftover in (building, building.with_name(building.name + ".wal")):
            leftover.unlink(missing_ok=True)
    # A reader that opened the old file may still be about to open its graph: keep one generation back.
    ann.remove_stale_sidecars(path, {sidecar.name, written[5]})
    duration = round(time.monotonic() - started, 3)
    return IndexStats(str(path), dim, *written[:4], True, duration, written[4], clock.phases, clock.memory)


# Up to this share of the index changed, rows go into a copy of the existing graph instead of a rebuild
# (a bulk load always rebuilds). The share was set for vss (measured 20k x 1024: rebuild ~6.5 ms per indexed
# row, in-place insert ~7.5 ms per changed row); 20% keeps a margin for the graph quality of many updates.
INCREMENTAL_MAX_SHARE = 0.2
# DuckDB's own memory during a build (its buffer pool; operators spill to ``<file>.tmp`` beyond it). The
# ANN graph and Python live outside it: ~2.9 GB at 1M x 1024 (float16 vectors + links, usearch's count).
BUILD_MEMORY_LIMIT = "2GB"
# ... and while the graph is built: the pool would otherwise keep up to BUILD_MEMORY_LIMIT of table pages
# cached beside the graph (the scan reads each page once); lowering the limit evicts them.
GRAPH_MEMORY_LIMIT = "256MB"


def _keeps_graph(con: duckdb.DuckDBPyConnection, previous: Path | None, prune: bool) -> bool:
    """True when a graph exists and the change (new/changed + removed rows) is small against it."""
    if previous is None:
        return False
    total_row = con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE}").fetchone()
    total = total_row[0] if total_row else 0
    changed_row = con.execute("SELECT count(*) FROM changed").fetchone()
    changed = changed_row[0] if changed_row else 0
    removed = _removed_count(con) if prune else 0
    return total > 0 and changed + removed <= INCREMENTAL_MAX_SHARE * total


def _removed_count(con: duckdb.DuckDBPyConnection) -> int:
    """Indexed chunks absent from ``incoming`` (what ``prune`` removes)."""
    row = con.execute(
        f"SELECT count(*) FROM {CHUNKS_TABLE} WHERE chunk_id NOT IN (SELECT chunk_id FROM incoming)"
    ).fetchone()
    return int(row[0]) if row else 0


_GONE_SQL = f"""
SELECT {ann.KEY_COLUMN} FROM {CHUNKS_TABLE}
WHERE chunk_id IN (SELECT chunk_id FROM changed) {{prune}}
"""


def _write(
    file: Path,
    incoming: Incoming,
    dim: int,
    prune: bool,
    sidecar: Path,
    clock: BuildClock,
) -> tuple[int, int, int, int, str, str]:
    """Write the changes into ``file`` (a copy of the index) and its graph into ``sidecar``; returns
    (total, added, replaced, removed, how the graph was made, the previous graph's file name)."""
    con = connect(file)
    try:
        con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET disabled_compression_methods = 'alprd'")
        create_tables(con, dim)
        # The graph the copied file names, read from the copy itself: a connection to the live path in this
        # process may be DuckDB's cached instance of an older file while a reader still holds it.
        previous = ann.sidecar_of(con, read_meta(con), sidecar.parent)
        ann.ensure_key_column(con)
        attach(con, incoming, dim)
        # Into an empty table every incoming row is new: ``changed`` is then a view read once by the INSERT
        # (a temp table would copy all rows first: at 200k x 1024 that copy was 40% of the pre-graph time).
        empty_row = con.execute(f"SELECT count(*) = 0 FROM {CHUNKS_TABLE}").fetchone()
        empty = bool(empty_row and empty_row[0])
        if empty:
            con.execute(f"CREATE TEMP VIEW changed AS {_INCOMING_SQL}")
        else:
            con.execute(f"CREATE TEMP TABLE changed AS {_CHANGED_SQL}")
        incremental = not empty and _keeps_graph(con, previous, prune)
        clock.lap("diff")
        gone_keys: list[int] = []
        if incremental:
            prune_sql = "OR chunk_id NOT IN (SELECT chunk_id FROM incoming)" if prune else ""
            gone_keys = [int(r[0]) for r in con.execute(_GONE_SQL.format(prune=prune_sql)).fetchall()]
        first_new_key = ann.next_key(con)
        con.execute(f"CREATE OR REPLACE TEMP SEQUENCE ann_keys MINVALUE 0 START WITH {first_new_key}")
        con.execute("BEGIN")
        replaced = removed = 0
        if not empty:
            replaced_row = con.execute(
                f"SELECT count(*) FROM {CHUNKS_TABLE} WHERE chunk_id IN (SELECT chunk_id FROM changed)"
            ).fetchone()
            replaced = replaced_row[0] if replaced_row else 0
            con.execute(f"DELETE FROM {CHUNKS_TABLE} WHERE chunk_id IN (SELECT chunk_id FROM changed)")
        if prune and not empty:
            gone = con.execute(
                f"DELETE FROM {CHUNKS_TABLE} WHERE chunk_id NOT IN (SELECT chunk_id FROM incoming)"
            ).fetchone()
            removed = gone[0] if gone else 0
        inserted = con.execute(
            f"INSERT INTO {CHUNKS_TABLE} (chunk_id, document_id, text, model, text_hash, embedding, "
            f"{ann.KEY_COLUMN}) SELECT chunk_id, document_id, text, model, text_hash, embedding, "
            "nextval('ann_keys') FROM changed"
        ).fetchone()
        added = (inserted[0] if inserted else 0) - replaced
        con.execute("COMMIT")
        con.execute(f"DROP {'VIEW' if empty else 'TABLE'} changed")
        clock.lap("write")
        ann.create_key_index(con)
        clock.lap("keys")
        con.execute(f"SET memory_limit = '{GRAPH_MEMORY_LIMIT}'")
        if incremental and previous is not None:
            graph = ann.update_sidecar(con, dim, previous, sidecar, gone_keys, first_new_key)
        else:
            graph = ann.build_sidecar(con, dim, sidecar)
        clock.lap("graph")
        con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
        create_fts_index(con)
        clock.lap("bm25")
        total_row = con.execute(f"SELECT count(*) FROM {CHUNKS_TABLE}").fetchone()
        total = total_row[0] if total_row else 0
        models = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT model FROM {CHUNKS_TABLE} WHERE model IS NOT NULL"
            ).fetchall()
        ]
        write_meta(
            con,
            {
                "dim": str(dim),
                "models": ",".join(sorted(models)),
                "rows": str(total),
                "built_at": str(time.time()),
                ann.META_KEY: graph.name if graph else "",
            },
        )
        con.execute("CHECKPOINT")
        clock.lap("checkpoint")
    finally:
        con.close()
    how = "in_place" if incremental else "rebuilt"
    return total, added, replaced, removed, how, previous.name if previous else ""


def open_index(path: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the index with vss/fts loaded (never blocks on, or breaks, a rebuild).

    It answers point queries on one thread (``rag.threads``: a graph query reads ~20 rows, and a parallel
    pipeline start cost more than that); the scans in ``rag.search`` take every core while they run.
    """
    path = Path(path) if path is not None else default_index_path()
    if not path.is_file():
        raise IndexNotFoundError(f"no RAG index at {path}: materialize rag_index (or call build_index) first")
    con = connect(path, read_only=True)
    use_point_query_threads(con)
    return con


def index_meta(path: Path | str | None = None) -> dict[str, str]:
    """The index's metadata: ``dim``, ``models`` (comma-separated), ``rows``, ``built_at``."""
    con = open_index(path)
    try:
        return read_meta(con)
    finally:
        con.close()


def indexed_ids(path: Path | str | None = None) -> list[str]:
    """Every chunk_id in the index (empty when there is no index yet)."""
    path = Path(path) if path is not None else default_index_path()
    if not path.is_file():
        return []
    con = open_index(path)
    try:
        return [
            r[0] for r in con.execute(f"SELECT chunk_id FROM {CHUNKS_TABLE} ORDER BY chunk_id").fetchall()
        ]
    finally:
        con.close()
