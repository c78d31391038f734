"""A partition's figures as they stand in the warehouse: rows, tokens and what they were billed.

Why cumulative, from DuckDB: a collect run can find nothing new (the batch has not ended, or *Materialize
all* ran the collect step right after the submit). Its materialization becomes the partition's latest, so
run-only counts would show 0 requests and $0 and hide the real harvest. The warehouse's rows are the
truth of what the partition holds and what it cost, whichever run wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass

from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.warehouse import CLAUDE_TABLE, VOYAGE_TABLE, query_rows

_CACHE_COLUMNS = ("cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True)
class ClaudeFigures:
    rows: int = 0
    succeeded: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    billed_usd: float = 0.0

    @property
    def failed(self) -> int:
        return self.rows - self.succeeded


def claude_figures(store: HarvestStoreResource, partition: str) -> ClaudeFigures:
    """Sums over the partition's current ``claude_messages`` rows, billed at batch prices per model."""
    from harvest_defs.defs.column_schema import duckdb_columns
    from harvest_defs.harvest.pricing import billed_batch_usd

    columns = {name for name, _ in duckdb_columns(store, CLAUDE_TABLE)}
    if "partition_key" not in columns:
        return ClaudeFigures()
    cache = [f"coalesce(sum({c}), 0)" if c in columns else "0" for c in _CACHE_COLUMNS]
    rows = query_rows(
        store,
        store.warehouse_path,
        f"SELECT model, count(*) AS n, count(*) FILTER (WHERE success) AS ok, "
        f"coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o, "
        f"{cache[0]} AS cw, {cache[1]} AS cr "
        f"FROM {CLAUDE_TABLE} WHERE partition_key = ? GROUP BY model",
        [partition],
        needs=CLAUDE_TABLE,
    )
    total = dict.fromkeys(("n", "ok", "i", "o", "cw", "cr"), 0)
    billed = 0.0
    for row in rows or []:
        for key in total:
            total[key] += int(row[key] or 0)
        if row["model"]:
            billed += billed_batch_usd(
                str(row["model"]), int(row["i"]), int(row["o"]), int(row["cw"]), int(row["cr"])
            )
    return ClaudeFigures(total["n"], total["ok"], total["i"], total["o"], total["cw"], total["cr"], billed)


def voyage_figures(store: HarvestStoreResource, partition: str) -> tuple[int, int]:
    """(embeddings, billed tokens) of the partition's current ``voyage_embeddings`` rows."""
    from harvest_defs.defs.column_schema import duckdb_columns

    columns = {name for name, _ in duckdb_columns(store, VOYAGE_TABLE)}
    if "partition_key" not in columns or "total_tokens" not in columns:
        return 0, 0
    rows = query_rows(
        store,
        store.warehouse_path,
        f"SELECT count(*) AS n, coalesce(sum(total_tokens), 0) AS t FROM {VOYAGE_TABLE} "
        "WHERE partition_key = ?",
        [partition],
        needs=VOYAGE_TABLE,
    )
    row = (rows or [{"n": 0, "t": 0}])[0]
    return int(row["n"] or 0), int(row["t"] or 0)
