"""``summary_embeddings``: Voyage embeddings of the partition's successful summaries (``@dlt_assets``).

Small and medium partitions use the real-time API (concurrent, rate-limit aware); partitions at or above
``VoyageResource.batch_threshold`` texts go through the Voyage Batch API (33% off). Either way the
harvester skips texts already embedded with the same model/settings, so a re-run embeds nothing.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from harvest_defs.defs.assets.claude import SUMMARIES_KEY
from harvest_defs.defs.assets.documents import read_snapshot
from harvest_defs.defs.dlt_support import (
    AssetKeyTranslator,
    definition_pipeline,
    run_dlt_locked,
)
from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import DUCKDB_POOL, HarvestStoreResource, VoyageResource
from harvest_defs.defs.voyage_batches import BatchStep, batch_mode_tables, mark_collected
from harvest_defs.defs.warehouse import CLAUDE_TABLE, query_rows

EMBEDDINGS_KEY = dg.AssetKey("summary_embeddings")
VOYAGE_PIPELINE = "harvest_voyage"


@dlt.source(name="voyage")
def voyage_placeholder_source() -> Any:
    """Describes the asset at load time without importing the harvester (or the SDK) — runs replace it."""

    @dlt.resource(name="voyage_embeddings")
    def voyage_embeddings() -> Iterator[Any]:
        yield from ()

    return voyage_embeddings


@dlt.source(name="voyage")
def voyage_embed_source(resource: Any) -> Any:
    return resource


def partition_summaries(store: HarvestStoreResource, partition_key: str) -> list[dict[str, Any]]:
    """Successful summaries of this partition's documents, as ``{"id", "text"}`` inputs for Voyage."""
    ids = [doc["document_id"] for doc in read_snapshot(store, partition_key)]
    if not ids:
        return []
    rows = query_rows(
        store,
        store.warehouse_path,
        f"SELECT custom_id, response FROM {CLAUDE_TABLE} "
        "WHERE success AND response IS NOT NULL "
        "AND custom_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY custom_id",
        [ids],
        needs=CLAUDE_TABLE,
    )
    return [
        {"id": row["custom_id"], "text": row["response"]} for row in rows or [] if row["response"].strip()
    ]


class _EmbeddingTally:
    def __init__(self) -> None:
        self.rows = 0
        self.tokens = 0
        self.dimensions: set[int] = set()

    def __call__(self, table: Any) -> Any:
        import pyarrow.compute as pc

        self.rows += table.num_rows
        if "total_tokens" in table.column_names:
            self.tokens += int(pc.sum(table.column("total_tokens")).as_py() or 0)
        if "dimensions" in table.column_names and table.num_rows:
            self.dimensions.update(int(d) for d in pc.unique(table.column("dimensions")).to_pylist())
        return table


def build_embeddings_assets(
    partitions_def: dg.PartitionsDefinition, pipelines_dir: str
) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=voyage_placeholder_source(),
        dlt_pipeline=definition_pipeline(VOYAGE_PIPELINE, pipelines_dir),
        name="summary_embeddings",
        partitions_def=partitions_def,
        dagster_dlt_translator=AssetKeyTranslator(
            {"voyage_embeddings": EMBEDDINGS_KEY},
            deps=[SUMMARIES_KEY],
            description="Voyage embeddings of the summaries (native FLOAT[dim]), real-time or Batch API.",
        ),
        pool=DUCKDB_POOL,
    )
    def summary_embeddings(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        store: HarvestStoreResource,
        voyage: VoyageResource,
    ) -> Iterator[dg.MaterializeResult]:
        started = time.monotonic()
        texts = partition_summaries(store, context.partition_key)
        mode = "batch" if len(texts) >= voyage.batch_threshold else "realtime"
        context.log.info(f"{len(texts)} summaries to embed with {voyage.model} ({mode} API)")
        tally = _EmbeddingTally()
        step = BatchStep()
        if mode == "batch":
            resource = batch_resource(texts, voyage, store, context.partition_key, context.log.info, step)
        else:
            resource = embeddings_resource(texts, voyage)
        results = run_dlt_locked(
            context,
            dlt,
            store,
            voyage_embed_source(resource.add_map(tally)),
            VOYAGE_PIPELINE,
        )
        if step.collected:  # only after the load succeeded: a failed load collects them again
            mark_collected(voyage, store, step.collected)
        from harvest_defs.harvest.pricing import estimate_voyage_usd

        extra = as_metadata(
            {
                "texts_in_partition": len(texts),
                "embeddings_created": tally.rows,
                "texts_cached": len(texts) - tally.rows,
                "total_tokens": tally.tokens,
                "dimensions": dg.MetadataValue.json(sorted(tally.dimensions)),
                "api_mode": mode,
                "voyage_batches_collected": dg.MetadataValue.json(step.collected) if step.collected else None,
                "voyage_batches_pending": dg.MetadataValue.json(step.submitted) if step.submitted else None,
                "model": voyage.model,
                "est_usd": estimate_voyage_usd(voyage.model, tally.tokens, batch=mode == "batch"),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
        for result in results:
            yield result._replace(metadata={**(result.metadata or {}), **extra})

    return summary_embeddings


def embeddings_resource(texts: Sequence[dict[str, Any]], voyage: VoyageResource) -> Any:
    """The library's real-time ``voyage_embeddings_batch`` resource, configured from the Dagster resource."""
    from harvest_defs.harvest.voyage import voyage_embeddings_batch

    return voyage_embeddings_batch(
        texts=list(texts),
        input_type="document",
        output_dimension=voyage.dims,
        mode="realtime",
        **voyage.client_kwargs(),
    )


def batch_resource(
    texts: Sequence[dict[str, Any]],
    voyage: VoyageResource,
    store: HarvestStoreResource,
    partition_key: str,
    log: Any,
    step: BatchStep,
) -> Any:
    """A ``voyage_embeddings`` resource over the partition's ended Voyage batches (see voyage_batches)."""
    from harvest_defs.harvest.voyage import embedding_column_hints

    return dlt.resource(
        batch_mode_tables(texts, voyage, store, partition_key, log, step),
        name="voyage_embeddings",
        write_disposition="merge",
        primary_key="embedding_id",
        columns=embedding_column_hints(voyage.dims, voyage.model),
    )
