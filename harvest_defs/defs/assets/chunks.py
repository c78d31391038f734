"""``chunk_embeddings``: Voyage embeddings of the partition's document passages (``@dlt_assets``).

The ``document_chunks`` step runs inside it: the partition's ``documents`` snapshot is split by
``rag/chunking.py`` (Markdown sections, then a token budget with overlap) into passages with
content-addressed ids, so an edit re-embeds only the passages it touched: every untouched passage keeps
its id and text hash (the destination row is kept as is), and a passage seen before under any id (a
rename, a move, a revert) gets its vector from the vector store for free. Embedding goes through the
summaries' own split (``voyage.partition_tables``): real time below ``VoyageResource.batch_threshold``
passages, the Voyage Batch API (33% off) at or above it, in the ledger namespace ``CHUNK_PROVIDER`` —
the run loads the partition's ended passage batches, submits what is neither embedded nor in flight, and
ends; ``voyage_batch_sensor`` requests this asset again when one ends (never paid twice: the ledger).

Reconciled like ``summary_embeddings`` (``voyage_rows``): rows carry ``partition_key``; chunks no longer
in the partition's snapshot (a deleted, renamed or edited document's old passages) are hard-deleted in
the same load. With ``RagResource.contextual`` each passage is embedded as *context + passage*, the
context written by Claude through Message Batches (``rag/contextual.py``); without it, or for a passage
whose context is not back yet, the passage alone.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from harvest_defs.defs.assets.claude import SUMMARIES_KEY
from harvest_defs.defs.assets.documents import DOCUMENTS_KEY, read_snapshot
from harvest_defs.defs.assets.voyage import (
    EmbeddingTally,
    embedding_mode,
    load_embeddings,
    partition_tables,
)
from harvest_defs.defs.dlt_support import AssetKeyTranslator, definition_pipeline
from harvest_defs.defs.metadata import as_metadata, usd
from harvest_defs.defs.resources import (
    DUCKDB_POOL,
    AnthropicResource,
    HarvestStoreResource,
    RagResource,
    VoyageResource,
)
from harvest_defs.defs.voyage_batches import CHUNK_PROVIDER, BatchStep
from harvest_defs.defs.voyage_rows import VOYAGE_HINTS
from harvest_defs.defs.warehouse import DATASET, partition_rows
from harvest_defs.harvest.dedup import MERGE_DISPOSITION

CHUNK_EMBEDDINGS_KEY = dg.AssetKey("chunk_embeddings")
CHUNK_PIPELINE = "harvest_chunks"
CHUNK_TABLE_NAME = "chunk_embeddings"
CHUNK_TABLE = f"{DATASET}.{CHUNK_TABLE_NAME}"
CHUNK_HINTS: dict[str, Any] = {**VOYAGE_HINTS, "document_id": {"data_type": "text", "nullable": True}}


@dlt.source(name="chunks")
def chunk_embed_source(rows: Callable[[], Iterator[Any]] | None = None, dims: int | None = None) -> Any:
    """The partition's reconciled passage embeddings; ``_deleted`` rows are hard-deleted."""
    columns = dict(CHUNK_HINTS)
    if rows is not None:
        from harvest_defs.harvest.voyage import embedding_column_hints

        columns.update(embedding_column_hints(dims))

    @dlt.resource(  # each id once per load (``voyage.partition_tables``): no dlt dedup window
        name=CHUNK_TABLE_NAME,
        write_disposition=MERGE_DISPOSITION,
        primary_key="embedding_id",
        columns=columns,
    )
    def chunk_embeddings() -> Iterator[Any]:
        yield from rows() if rows is not None else ()

    return chunk_embeddings


def partition_chunks(documents: list[dict[str, Any]], rag: RagResource) -> list[Any]:
    """``document_chunks``: every passage of the partition's current documents, in document order."""
    from harvest_defs.rag.chunking import chunk_document

    out: list[Any] = []
    for doc in documents:
        out.extend(
            chunk_document(
                doc["document_id"],
                doc["text"] or "",
                doc.get("title"),
                max_tokens=rag.chunk_max_tokens,
                overlap_tokens=rag.chunk_overlap_tokens,
            )
        )
    return out


def with_document(table: Any, document_of: dict[str, str]) -> Any:
    """The passage's document id beside its row (null on a deletion row: its passage is gone)."""
    import pyarrow as pa

    ids = table.column("embedding_id").to_pylist()
    return table.append_column("document_id", pa.array([document_of.get(i) for i in ids], pa.string()))


def build_chunk_embeddings_asset(
    partitions_def: dg.PartitionsDefinition, pipelines_dir: str
) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=chunk_embed_source(),
        dlt_pipeline=definition_pipeline(CHUNK_PIPELINE, pipelines_dir),
        name="chunk_embeddings",
        partitions_def=partitions_def,
        dagster_dlt_translator=AssetKeyTranslator(
            {CHUNK_TABLE_NAME: CHUNK_EMBEDDINGS_KEY},
            # After claude_summaries in the collect run: with contexts on, that step polls and closes the
            # partition's submissions, so ours (recorded here) must come after it to be seen by the sensor.
            deps=[DOCUMENTS_KEY, SUMMARIES_KEY],
            description=(
                "Voyage embeddings of the partition's document passages (structure-aware chunks with "
                "content ids; optional Claude-written context); rows of gone passages deleted."
            ),
        ),
        pool=DUCKDB_POOL,
    )
    def chunk_embeddings(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        store: HarvestStoreResource,
        voyage: VoyageResource,
        anthropic: AnthropicResource,
        rag: RagResource,
    ) -> Iterator[dg.MaterializeResult]:
        started = time.monotonic()
        partition = context.partition_key
        chunks = partition_chunks(read_snapshot(store, partition), rag) if rag.chunks else []
        contexts: dict[str, str] = {}
        pending: set[str] = set()
        report: dict[str, Any] = {}
        if rag.contextual_on and chunks:
            from harvest_defs.defs.contextual_step import contexts_for

            documents = read_snapshot(store, partition)
            contexts, pending, report = contexts_for(
                chunks, documents, anthropic, store, rag, partition, context.log
            )
        from harvest_defs.rag.contextual import contextual_text

        ready = [c for c in chunks if c.chunk_id not in pending]
        texts = [{"id": c.chunk_id, "text": contextual_text(contexts.get(c.chunk_id), c.text)} for c in ready]
        document_of = {c.chunk_id: c.document_id for c in ready}
        current = partition_rows(store, CHUNK_TABLE, "embedding_id", [], partition)
        deleted = sorted(
            r["embedding_id"]
            for r in current
            if r["embedding_id"] not in document_of and r["embedding_id"] not in pending
        )
        context.log.info(
            f"{len(chunks)} passages of {len({c.document_id for c in chunks})} documents in {partition!r}, "
            f"{len(deleted)} passage embeddings to delete"
        )
        mode = embedding_mode(len(texts), voyage, store, partition, CHUNK_PROVIDER)
        context.log.info(f"passages of {partition!r} through the {mode} API")
        tally = EmbeddingTally()
        step = BatchStep()
        source = chunk_embed_source(
            rows=lambda: partition_tables(
                texts,
                voyage,
                store,
                partition,
                mode,
                context.log,
                step,
                tally,
                deleted,
                table_name=CHUNK_TABLE_NAME,
                provider=CHUNK_PROVIDER,
                finish=lambda table: with_document(table, document_of),
            ),
            dims=voyage.dims,
        )
        results = load_embeddings(context, dlt, store, voyage, source, CHUNK_PIPELINE, step)
        from harvest_defs.harvest.pricing import estimate_voyage_usd

        extra = as_metadata(
            {
                "chunks_in_partition": len(chunks),
                "chunk_embeddings_written": tally.rows,
                "chunk_embeddings_deleted": len(deleted),
                "chunks_unchanged": len(chunks) - tally.rows,
                "total_tokens": tally.tokens,
                "contextual": rag.contextual_on,
                **report,
                "api_mode": mode,
                **step.metadata(),
                "est_usd": usd(estimate_voyage_usd(voyage.model, tally.tokens, batch=mode == "batch")),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
        for result in results:
            yield result._replace(metadata={**(result.metadata or {}), **extra})

    return chunk_embeddings
