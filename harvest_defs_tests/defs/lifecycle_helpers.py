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
    """document_id -> the text its summary row shows (one per document; passages are ``passage_rows``)."""
    return dict(
        rows(home / "rag.duckdb", "SELECT document_id, text FROM chunks WHERE chunk_id = document_id")
    )


def passage_documents(home: Path) -> set[str]:
    """Documents with passage rows in the index (every non-empty document has at least one)."""
    return {
        r[0]
        for r in rows(home / "rag.duckdb", "SELECT document_id FROM chunks WHERE chunk_id <> document_id")
    }


def passage_embeddings(home: Path) -> dict[str, tuple[str, str]]:
    """embedding_id -> (document_id, embedded text) of ``harvest.chunk_embeddings``."""
    found = rows(
        home / "warehouse.duckdb", "SELECT embedding_id, document_id, text FROM harvest.chunk_embeddings"
    )
    return {r[0]: (r[1], r[2]) for r in found}


def costly(emulator: EmulatorServer) -> dict[str, int]:
    stats = emulator.stats()
    return {k: int(stats.get(k, 0)) for k in COSTLY}


def spent(before: dict[str, int], emulator: EmulatorServer) -> dict[str, int]:
    after = costly(emulator)
    return {k: after[k] - before[k] for k in COSTLY if after[k] != before[k]}
