"""Reading what the chain holds, for the lifecycle tests: every table a user queries, and the index."""

from __future__ import annotations

from pathlib import Path

import duckdb

from harvest_defs.emulator import EmulatorServer

COSTLY = (
    "anthropic_batch_requests",
    "anthropic_batches_created",
    "voyage_texts",
    "voyage_embed_calls",
    "voyage_batch_inputs",
)


def rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:  # nothing loaded yet (an empty corpus): no table, no rows
        return []
    finally:
        con.close()


def claude_rows(home: Path) -> dict[str, tuple[str, str | None, bool]]:
    """custom_id -> (prompt, response, success)."""
    found = rows(
        home / "warehouse.duckdb", "SELECT custom_id, prompt, response, success FROM harvest.claude_messages"
    )
    return {r[0]: (r[1], r[2], r[3]) for r in found}


def voyage_rows(home: Path) -> dict[str, str]:
    """embedding_id -> embedded text (the summary)."""
    return dict(rows(home / "warehouse.duckdb", "SELECT embedding_id, text FROM harvest.voyage_embeddings"))


def index_rows(home: Path) -> dict[str, str]:
    """document_id -> chunk text, as search and answers see them."""
    return dict(rows(home / "rag.duckdb", "SELECT document_id, text FROM chunks"))


def costly(emulator: EmulatorServer) -> dict[str, int]:
    stats = emulator.stats()
    return {k: int(stats.get(k, 0)) for k in COSTLY}


def spent(before: dict[str, int], emulator: EmulatorServer) -> dict[str, int]:
    after = costly(emulator)
    return {k: after[k] - before[k] for k in COSTLY if after[k] != before[k]}
