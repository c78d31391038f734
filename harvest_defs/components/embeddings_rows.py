"""What a ``VoyageEmbeddings`` run writes for a partition: one row per current upstream text, nothing else.

Reconciled like the Claude side (``harvest_rows``), keyed by ``embedding_id`` = the upstream id column:
- a text whose row already holds the same text hash (and succeeded) is neither sent nor written;
- the others get a vector from the library (``embedding_tables`` in real time, or the Voyage Batch API via
  ``VoyageBatchHarvester``), which looks in this table and in the vector store before paying Voyage;
- a text that cannot be embedded (empty, or the API failed on it) is a row with ``success = false`` and the
  reason — its ``text_hash`` is left NULL, so no cache ever takes it for an embedded text and a re-run
  retries it;
- ids gone from the upstream partition are hard-deleted (dlt ``hard_delete`` on ``_deleted``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harvest_defs.components.embeddings_spec import EmbeddingsSpec
from harvest_defs.defs.claude_rows import DELETED, PARTITION
from harvest_defs.defs.resources import HarvestStoreResource

if TYPE_CHECKING:
    import pyarrow as pa

SUCCESS, ERROR = "success", "error"
HINTS: dict[str, Any] = {
    DELETED: {"data_type": "bool", "hard_delete": True},
    PARTITION: {"data_type": "text", "nullable": True},
    SUCCESS: {"data_type": "bool", "nullable": True},
    ERROR: {"data_type": "text", "nullable": True},
}


class UpstreamError(RuntimeError):
    """The upstream table is missing or lacks a configured column (checked at run time, not at load)."""


@dataclass
class EmbedOutcome:
    texts: int = 0
    unchanged: int = 0
    written: int = 0
    failed: int = 0
    skipped_null: int = 0
    tokens: int = 0
    in_flight: int = 0
    mode: str = "realtime"
    deleted: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)


def upstream_texts(
    spec: EmbeddingsSpec, store: HarvestStoreResource, partition: str | None, outcome: EmbedOutcome
) -> list[dict[str, Any]]:
    """``{"id", "text"}`` of the upstream partition's rows (a ``success`` column, when present, filters)."""
    import duckdb

    from harvest_defs.defs.warehouse import column_exists, table_exists

    db = store.warehouse_path
    if not db.exists():
        raise UpstreamError(
            f"{spec.name}: the warehouse has no {spec.upstream_table} yet: materialize {spec.upstream}"
        )
    with store.duckdb_lock(db, exclusive=False):
        con = duckdb.connect(str(db), read_only=True)
        try:
            if not table_exists(con, spec.upstream_table):
                raise UpstreamError(
                    f"{spec.name}: no table {spec.upstream_table} yet: materialize {spec.upstream}"
                )
            for column, field_name in ((spec.id_column, "id_column"), (spec.text_column, "text_column")):
                if not column_exists(con, spec.upstream_table, column):
                    raise UpstreamError(
                        f"{spec.name}: {field_name}: {spec.upstream_table} has no column {column!r}"
                    )
            where, params = [], []
            if column_exists(con, spec.upstream_table, SUCCESS):
                where.append(f'"{SUCCESS}"')
            if spec.partitioned and partition is not None:
                where.append(f"{PARTITION} = ?")
                params.append(partition)
            sql = (
                f'SELECT CAST("{spec.id_column}" AS VARCHAR) AS id, '
                f'CAST("{spec.text_column}" AS VARCHAR) AS text '
                f"FROM {spec.upstream_table}"
                + (f" WHERE {' AND '.join(where)}" if where else "")
                + " ORDER BY 1"
            )
            rows = con.execute(sql, params).to_arrow_table().to_pylist()
        finally:
            con.close()
    texts = [r for r in rows if r["id"] is not None and r["text"] is not None]
    outcome.skipped_null = len(rows) - len(texts)
    return texts


def tag(table: pa.Table, partition: str, *, deleted: bool = False) -> pa.Table:
    import pyarrow as pa

    n = table.num_rows
    if SUCCESS not in table.column_names:
        table = table.append_column(SUCCESS, pa.repeat(pa.scalar(not deleted, pa.bool_()), n))
        table = table.append_column(ERROR, pa.nulls(n, pa.string()))
    table = table.append_column(PARTITION, pa.repeat(pa.scalar(partition, pa.string()), n))
    return table.append_column(DELETED, pa.repeat(pa.scalar(deleted, pa.bool_()), n))


def failure_rows(spec: EmbeddingsSpec, failures: list[dict[str, Any]], partition: str) -> pa.Table:
    """``success = false`` rows: the text kept for debugging, no vector, no text hash (never a cache hit)."""
    import pyarrow as pa

    from harvest_defs.harvest.voyage.arrow import embedding_schema

    schema = embedding_schema(spec.dims)
    n = len(failures)
    given = {
        "embedding_id": pa.array([f["id"] for f in failures], pa.string()),
        "text": pa.array([f["text"] for f in failures], pa.string()),
        "model": pa.array([spec.model] * n, pa.string()),
        "dimensions": pa.array([spec.dims] * n, pa.int64()),
        "input_type": pa.array([spec.input_type] * n, pa.string()),
    }
    columns = [given.get(f.name, pa.nulls(n, f.type)) for f in schema]
    table = pa.Table.from_arrays(columns, schema=schema)
    table = table.append_column(SUCCESS, pa.repeat(pa.scalar(False, pa.bool_()), n))
    table = table.append_column(ERROR, pa.array([f["error"] for f in failures], pa.string()))
    return tag(table, partition)


def deletion_rows(spec: EmbeddingsSpec, ids: list[str], partition: str) -> pa.Table:
    from harvest_defs.defs.voyage_rows import deletions

    table = deletions(ids, spec.dims, partition)  # already tagged (partition_key, _deleted = true)
    import pyarrow as pa

    table = table.add_column(table.num_columns - 2, SUCCESS, pa.nulls(len(ids), pa.bool_()))
    return table.add_column(table.num_columns - 2, ERROR, pa.nulls(len(ids), pa.string()))


CURRENT_COLUMNS = ["text_hash", SUCCESS, "model", "dimensions", "input_type"]


def reconciled_tables(
    spec: EmbeddingsSpec,
    texts: list[dict[str, Any]],
    current: dict[str, tuple[Any, ...]],
    partition: str,
    embed: Any,
    outcome: EmbedOutcome,
) -> Iterator[pa.Table]:
    """The tables that make the partition's rows equal ``texts`` (``embed(todo)`` yields library tables).

    ``embed`` returns ``(tables, pending_ids)``: ids still in a Voyage batch keep their previous row
    until the batch ends (the sensor requests the run that collects it).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from harvest_defs.harvest.hashing import text_hash

    outcome.texts = len(texts)
    failures = [dict(t, error="empty text") for t in texts if not t["text"].strip()]
    valid = [t for t in texts if t["text"].strip()]
    settings = (spec.model, spec.dims, spec.input_type)  # another model or dimension: embedded anew
    todo = [t for t in valid if current.get(t["id"]) != (text_hash(t["text"]), True, *settings)]
    outcome.unchanged = len(valid) - len(todo)
    wanted = pa.array(sorted(t["id"] for t in todo), pa.string())
    done: set[str] = set()
    tables, pending = embed(todo)
    for table in _drain(tables):
        table = table.filter(pc.is_in(table.column("embedding_id"), wanted))  # a batch may hold stale ids
        if not table.num_rows:
            continue
        done.update(table.column("embedding_id").to_pylist())
        outcome.written += table.num_rows
        outcome.tokens += int(pc.sum(table.column("total_tokens")).as_py() or 0)
        yield tag(table, partition)
    in_flight = set(pending()) - done
    outcome.in_flight = len(in_flight)
    failures += [
        dict(t, error="not embedded: the API call failed (see the run log); a re-run retries it")
        for t in todo
        if t["id"] not in done and t["id"] not in in_flight
    ]
    if failures:
        outcome.failed = len(failures)
        outcome.written += len(failures)
        outcome.failures = [{"id": f["id"], "error": f["error"]} for f in failures[:10]]
        yield failure_rows(spec, failures, partition)
    keep = {t["id"] for t in texts}
    outcome.deleted = sorted(cid for cid in current if cid not in keep)
    if outcome.deleted:
        yield deletion_rows(spec, outcome.deleted, partition)


def _drain(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    yield from tables
