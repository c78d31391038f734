"""What ``summary_embeddings`` writes for a partition: one vector per *current* summary, nothing else.

The embeddings of a partition are reconciled like its summaries (``claude_rows``): the wanted set is the
partition's documents whose ``claude_messages`` row succeeded *for the current text* (its request hash is
the one the current prompt has). A document whose new summary is still in a batch is left out rather than
served with the summary of its previous text; rows of documents no longer wanted are hard-deleted. The
library resource then embeds only what is not already in the destination with the same text hash, taking
vectors from the vector store (revert, rename, failed load) before paying Voyage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.claude_rows import DELETED, PARTITION, build_prompts
from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource
from harvest_defs.defs.warehouse import CLAUDE_TABLE, query_rows

if TYPE_CHECKING:
    import pyarrow as pa

VOYAGE_HINTS: dict[str, Any] = {
    DELETED: {"data_type": "bool", "hard_delete": True},
    PARTITION: {"data_type": "text", "nullable": True},
}


def current_summaries(
    store: HarvestStoreResource,
    anthropic: AnthropicResource,
    batches: Iterable[Sequence[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``{"id", "text"}`` inputs: the successful summaries of exactly these documents' current texts.

    ``batches``: the partition's documents in chunks (``documents.snapshot_batches``). Only each
    document's current request hash is kept past its chunk, so the documents' texts are never all in
    memory at once; the summaries (the texts to embed) are read from the warehouse.
    """
    from harvest_defs.harvest.claude.prompts import prepare_prompts
    from harvest_defs.harvest.claude.settings import MAX_BYTES_PER_BATCH

    current: dict[str, str] = {}
    for documents in batches:
        prompts, _ = build_prompts(documents, anthropic)
        prepared = prepare_prompts(
            prompts,
            anthropic.model,
            anthropic.max_tokens,
            anthropic.system_prompt,
            anthropic.temperature,
            MAX_BYTES_PER_BATCH,
        )
        current.update((r.custom_id, r.request_hash) for r in prepared.requests)
    if not current:
        return []
    rows = query_rows(
        store,
        store.warehouse_path,
        f"SELECT custom_id, response, request_hash FROM {CLAUDE_TABLE} "
        "WHERE success AND response IS NOT NULL "
        "AND custom_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY custom_id",
        [sorted(current)],
        needs=CLAUDE_TABLE,
    )
    return [
        {"id": row["custom_id"], "text": row["response"]}
        for row in rows or []
        if current.get(row["custom_id"]) == row["request_hash"] and row["response"].strip()
    ]


def tag(table: pa.Table, partition: str, deleted: bool = False) -> pa.Table:
    import pyarrow as pa

    n = table.num_rows
    table = table.append_column(PARTITION, pa.repeat(pa.scalar(partition, pa.string()), n))
    return table.append_column(DELETED, pa.repeat(pa.scalar(deleted, pa.bool_()), n))


def deletions(ids: list[str], dim: int, partition: str) -> pa.Table:
    import pyarrow as pa

    from harvest_defs.harvest.voyage.arrow import embedding_schema

    schema = embedding_schema(dim)
    columns = [
        pa.array(ids, pa.string()) if f.name == "embedding_id" else pa.nulls(len(ids), f.type) for f in schema
    ]
    return tag(pa.Table.from_arrays(columns, schema=schema), partition, deleted=True)
