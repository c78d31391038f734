"""The contextual step of ``chunk_embeddings`` (``RagResource.contextual``): submit now, embed when back.

Like the summaries, nothing blocks: the first run submits one Message Batch request per passage (the
document a cached first block, ``rag/contextual.py``) and records a *submission* of the partition in the
ledger, so ``claude_batch_sensor`` requests the partition's collect run again once the batch has ended;
that run finds the contexts on disk and embeds *context + passage*. A passage whose context is still in
flight is left out of the run (its previous row, if any, stays) rather than embedded twice; a passage
whose context request failed is embedded without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource, RagResource
from harvest_defs.rag.chunking import Chunk

CONTEXT_PROVIDER = "claude"  # the chain's submissions namespace: claude_batch_sensor watches it


def contexts_for(
    chunks: Sequence[Chunk],
    documents: list[dict[str, Any]],
    anthropic: AnthropicResource,
    store: HarvestStoreResource,
    rag: RagResource,
    partition: str,
    log: Any,
) -> tuple[dict[str, str], set[str], dict[str, Any]]:
    """(contexts by chunk id, chunk ids still waiting on their batch, metadata for the run)."""
    from harvest_defs.rag.contextual import describe, read_contexts, request_contexts

    harvester = anthropic.harvester(store)
    texts = {d["document_id"]: d["text"] for d in documents if d.get("text")}
    prepared, submitted = request_contexts(
        harvester, chunks, texts, model=rag.context_model, partition_key=partition
    )
    if submitted.new_batch_ids:
        harvester.ledger.record_submission(CONTEXT_PROVIDER, partition, submitted.new_batch_ids)
        log.info(f"contextual retrieval: submitted batch(es) {submitted.new_batch_ids} for {partition!r}")
    contexts, pending, report = read_contexts(harvester, prepared, chunks, submitted)
    log.info(describe(report) + f"; {len(pending)} passages wait for their context")
    return contexts, pending, {**report.as_dict(), "context_pending": len(pending)}
