"""``summary_embeddings``: Voyage embeddings of the partition's current summaries (``@dlt_assets``).

Small and medium partitions use the real-time API (concurrent, rate-limit aware); partitions at or above
``VoyageResource.batch_threshold`` texts go through the Voyage Batch API (33% off). ``partition_tables``
is that split, shared with ``chunk_embeddings`` (passages). Either way texts
already embedded (in the destination under the same id, or anywhere in the vector store) cost nothing,
so a re-run, a rename or a revert embeds nothing; rows are reconciled as ``voyage_rows`` describes.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from harvest_defs.defs.assets.claude import SUMMARIES_KEY
from harvest_defs.defs.assets.documents import snapshot_batches
from harvest_defs.defs.column_schema import VOYAGE_COLUMNS, column_schema_metadata, ours_first
from harvest_defs.defs.dlt_support import (
    AssetKeyTranslator,
    definition_pipeline,
    run_dlt_locked,
)
from harvest_defs.defs.errors import reraise_actionable
from harvest_defs.defs.library_log import library_progress
from harvest_defs.defs.metadata import as_metadata, usd
from harvest_defs.defs.partition_figures import voyage_figures
from harvest_defs.defs.resources import DUCKDB_POOL, AnthropicResource, HarvestStoreResource, VoyageResource
from harvest_defs.defs.voyage_batches import (
    VOYAGE_PROVIDER,
    BatchStep,
    batch_mode_tables,
    has_partition_batches,
    mark_collected,
)
from harvest_defs.defs.voyage_rows import VOYAGE_HINTS, current_summaries, deletions, tag
from harvest_defs.defs.warehouse import VOYAGE_TABLE, partition_rows
from harvest_defs.harvest.dedup import MERGE_DISPOSITION

EMBEDDINGS_KEY = dg.AssetKey("summary_embeddings")
VOYAGE_PIPELINE = "harvest_voyage"


@dlt.source(name="voyage")
def voyage_embed_source(rows: Callable[[], Iterator[Any]] | None = None, dims: int | None = None) -> Any:
    """The partition's reconciled embeddings (native FLOAT[dim]); ``_deleted`` rows are hard-deleted.

    Without ``rows`` it only describes the asset at load time (no SDK import, nothing runs).
    """
    columns = dict(VOYAGE_HINTS)
    if rows is not None:  # at run time only: the hint imports the Voyage package (load stays cheap)
        from harvest_defs.harvest.voyage import embedding_column_hints

        columns.update(embedding_column_hints(dims))

    # Each embedding_id once per load (``partition_tables``): dlt skips its dedup window, so the load
    # runs under the warehouse's bounded memory (``defs/unique_merge.py``).
    @dlt.resource(
        name="voyage_embeddings",
        write_disposition=MERGE_DISPOSITION,
        primary_key="embedding_id",
        columns=columns,
    )
    def voyage_embeddings() -> Iterator[Any]:
        yield from rows() if rows is not None else ()

    return voyage_embeddings


class EmbeddingTally:
    """What the rows this run loads add up to (the caller's metadata), counted as dlt reads them."""

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


def embedding_mode(
    texts: int, voyage: VoyageResource, store: HarvestStoreResource, partition: str, provider: str
) -> str:
    """``batch`` at or above ``VoyageResource.batch_threshold`` texts, or while a batch of the partition is
    open (else a partition that shrank would pay in real time for texts already in a batch); else real time.
    """
    if texts >= voyage.batch_threshold or has_partition_batches(store, provider, partition):
        return "batch"
    return "realtime"


def partition_tables(
    texts: list[dict[str, Any]],
    voyage: VoyageResource,
    store: HarvestStoreResource,
    partition: str,
    mode: str,
    log: Any,
    step: BatchStep,
    tally: EmbeddingTally,
    deleted: list[str],
    *,
    table_name: str = "voyage_embeddings",
    provider: str = VOYAGE_PROVIDER,
    finish: Callable[[Any], Any] | None = None,
) -> Iterator[Any]:
    """Embeddings for ``texts`` (cached ones free), each tagged with the partition; then the deletions.

    Shared by ``summary_embeddings`` and ``chunk_embeddings`` (one copy of the real-time/Batch API split):
    ``table_name`` is the destination the cache looks in, ``provider`` the asset's ledger namespace and
    ``finish`` adds the asset's own columns to every table (deletions included).

    Every ``embedding_id`` is yielded once (what lets both assets declare ``MERGE_DISPOSITION``): real
    time, ``embedding_tables`` promises it; in Batch API mode cache hits come first, then ended batches
    newest first, through the first-wins filter; deletions are ids outside ``texts``, so never repeats.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from harvest_defs.harvest.voyage.resource import embedding_tables
    from harvest_defs.harvest.voyage.settings import model_spec

    done = finish or (lambda table: table)
    dim = model_spec(voyage.model).dimension(voyage.dims)
    if mode == "batch":
        from harvest_defs.defs.unique_merge import scratch_dir
        from harvest_defs.harvest.voyage.unique import unique_embeddings

        tables = unique_embeddings(
            batch_mode_tables(
                texts, voyage, store, partition, log, step, table_name=table_name, provider=provider
            ),
            scratch_dir(store),
        )
    else:
        tables = embedding_tables(
            texts,
            input_type="document",
            output_dimension=voyage.dims,
            mode="realtime",
            raw_dir=store.raw_dir,
            table_name=table_name,
            rpm=voyage.rpm,
            tpm=voyage.tpm,
            **voyage.client_kwargs(),
        )
    wanted = pa.array(sorted(t["id"] for t in texts), pa.string())
    for table in tables:
        table = table.filter(pc.is_in(table.column("embedding_id"), wanted))  # a batch may hold stale ids
        if table.num_rows:
            yield done(tag(tally(table), partition))
    if deleted:
        yield done(deletions(deleted, dim, partition))


def load_embeddings(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    store: HarvestStoreResource,
    voyage: VoyageResource,
    source: Any,
    pipeline_name: str,
    step: BatchStep,
) -> list[dg.MaterializeResult]:
    """The load of ``summary_embeddings`` and ``chunk_embeddings``: locked, its progress in the run log.

    The library's per-window progress lines (texts read, sent, reused) are forwarded to the run's log
    (``library_log``); a connection or auth error says which endpoint and what to check; the batches
    this run collected are marked collected only after the load succeeded (a failed load collects them
    again).
    """
    try:
        with library_progress(context.log):
            results = run_dlt_locked(context, dlt, store, source, pipeline_name)
    except Exception as exc:
        reraise_actionable(exc, voyage.resolved_base_url(), "VOYAGE_API_KEY")
        raise
    if step.collected:
        mark_collected(voyage, store, step.collected)
    return results


def build_embeddings_assets(
    partitions_def: dg.PartitionsDefinition, pipelines_dir: str
) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=voyage_embed_source(),
        dlt_pipeline=definition_pipeline(VOYAGE_PIPELINE, pipelines_dir),
        name="summary_embeddings",
        partitions_def=partitions_def,
        dagster_dlt_translator=AssetKeyTranslator(
            {"voyage_embeddings": EMBEDDINGS_KEY},
            deps=[SUMMARIES_KEY],
            description=(
                "Voyage embeddings of the partition's current summaries (native FLOAT[dim]), real-time or "
                "Batch API; rows of removed documents deleted."
            ),
        ),
        pool=DUCKDB_POOL,
    )
    def summary_embeddings(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        store: HarvestStoreResource,
        voyage: VoyageResource,
        anthropic: AnthropicResource,
    ) -> Iterator[dg.MaterializeResult]:
        started = time.monotonic()
        partition = context.partition_key
        texts = current_summaries(store, anthropic, snapshot_batches(store, partition))
        current = partition_rows(store, VOYAGE_TABLE, "embedding_id", [], partition)
        wanted = {t["id"] for t in texts}
        deleted = sorted(r["embedding_id"] for r in current if r["embedding_id"] not in wanted)
        mode = embedding_mode(len(texts), voyage, store, partition, VOYAGE_PROVIDER)
        context.log.info(
            f"{len(texts)} current summaries in {partition!r} ({mode} API), "
            f"{len(deleted)} embeddings to delete"
        )
        tally = EmbeddingTally()
        step = BatchStep()
        source = voyage_embed_source(
            rows=lambda: partition_tables(
                texts, voyage, store, partition, mode, context.log, step, tally, deleted
            ),
            dims=voyage.dims,
        )
        results = load_embeddings(context, dlt, store, voyage, source, VOYAGE_PIPELINE, step)
        from harvest_defs.harvest.pricing import estimate_voyage_usd

        embedded, tokens = voyage_figures(store, partition)
        ours = as_metadata(
            {
                # The partition as it stands (cumulative from DuckDB), then what this run did.
                "embeddings_in_partition": embedded,
                "tokens_in_partition": tokens,
                "texts_in_partition": len(texts),
                "embeddings_written": tally.rows,
                "embeddings_deleted": len(deleted),
                "texts_unchanged": len(texts) - tally.rows,
                "tokens_this_run": tally.tokens,
                "dimensions": dg.MetadataValue.json(sorted(tally.dimensions)),
                "api_mode": mode,
                **step.metadata(),
                "model": voyage.model,
                # The billed tokens of the texts embedded by this run (cached ones cost nothing).
                "billed_usd_this_run": usd(
                    estimate_voyage_usd(voyage.model, tally.tokens, batch=mode == "batch")
                ),
                "duration_s": round(time.monotonic() - started, 3),
                **column_schema_metadata(store, VOYAGE_TABLE, VOYAGE_COLUMNS),
            }
        )
        for result in results:
            yield result._replace(metadata=ours_first(ours, result.metadata))

    return summary_embeddings
