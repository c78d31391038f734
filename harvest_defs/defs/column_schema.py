"""The Columns table of the Dagster UI: every column described, with its real DuckDB type.

dagster-dlt derives ``dagster/column_schema`` from dlt's schema, where a vector is ``json`` and no column
has a description. Ours reads the types from the DuckDB table itself (``FLOAT[1024]`` for embeddings) and
describes each column, so the Columns tab says what the warehouse holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from harvest_defs.defs.resources import HarvestStoreResource

# dlt's own bookkeeping columns, on every table it loads.
_DLT_COLUMNS = {
    "_dlt_load_id": "dlt load package that last wrote the row (joins harvest._dlt_loads)",
    "_dlt_id": "dlt's unique row id",
    "partition_key": "Dagster partition (corpus collection) the row belongs to",
    "_deleted": "dlt hard-delete marker: true only on deletion rows, which are never stored",
}

CLAUDE_COLUMNS: dict[str, str] = {
    "batch_id": "Message Batch that produced the result (null for a row rejected before sending)",
    "custom_id": "Document id (collection__path): the primary key, one row per current document",
    "prompt": "User prompt sent to Claude (the document under the summary instruction)",
    "response": "Claude's summary text (null when the request failed)",
    "model": "Claude model that answered",
    "input_tokens": "Uncached input tokens billed (usage.input_tokens)",
    "output_tokens": "Output tokens billed (usage.output_tokens)",
    "created_at": "When the result was collected (UTC)",
    "processing_time_ms": "Batch processing time attributed to the request, in milliseconds",
    "success": "True when the request succeeded",
    "error": "Error message of a failed, expired, canceled or invalid request",
    "error_type": "Error class (api error type, expired, canceled, invalid_request, ...)",
    "request_hash": "Content hash of the request: the cache key that prevents paying twice",
    "stop_reason": "Why generation stopped (end_turn, max_tokens, ...)",
    "cache_creation_input_tokens": "Input tokens written to the prompt cache (billed at 1.25x input)",
    "cache_read_input_tokens": "Input tokens read from the prompt cache (billed at 0.1x input)",
    "result_type": "Batch result type: succeeded, errored, expired or canceled",
    "truncated": "True when the document was cut to fit the model's context window",
    **_DLT_COLUMNS,
}

VOYAGE_COLUMNS: dict[str, str] = {
    "embedding_id": "Document id (= claude_messages.custom_id): the primary key",
    "text": "Summary text that was embedded",
    "embedding": "The vector, native DuckDB fixed-size float array",
    "model": "Voyage model that embedded the text",
    "dimensions": "Vector length",
    "total_tokens": "This text's share of its request's billed tokens",
    "created_at": "When the embedding was made (UTC)",
    "processing_time_ms": "API time attributed to the text, in milliseconds",
    "text_hash": "Content hash of the text: the vector store's cache key",
    "input_type": "Voyage input_type (document)",
    **_DLT_COLUMNS,
}


def duckdb_columns(store: HarvestStoreResource, qualified: str) -> list[tuple[str, str]]:
    """(name, type) of a warehouse table, in table order; [] before the first load. The type is the
    backend's own (``FLOAT[1024]`` in DuckDB, ``jsonb`` on Postgres)."""
    return store.warehouse().columns(qualified)


def column_schema(columns: list[tuple[str, str]], descriptions: Mapping[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=kind, description=descriptions.get(name, "(undocumented column)"))
            for name, kind in columns
        ]
    )


def column_schema_metadata(
    store: HarvestStoreResource, qualified: str, descriptions: Mapping[str, str]
) -> dict[str, Any]:
    """``{"dagster/column_schema": ...}`` from the live table, or {} when the table does not exist yet."""
    columns = duckdb_columns(store, qualified)
    if not columns:
        return {}
    return {"dagster/column_schema": dg.MetadataValue.table_schema(column_schema(columns, descriptions))}


def ours_first(ours: Mapping[str, Any], theirs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Our metadata first (the UI keeps insertion order), then dlt's keys we did not set ourselves."""
    return {**ours, **{k: v for k, v in (theirs or {}).items() if k not in ours}}
