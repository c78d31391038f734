"""The asset of one generic ``VoyageEmbeddings`` instance: ``<name>``, Voyage vectors of an upstream table.

Built on the library, like the chain's ``summary_embeddings``: below ``batch_threshold`` texts to embed the
partition goes through ``embedding_tables`` (real-time API, rate-limit aware, vectors persisted to the
vector store before dlt sees them); at or above it through ``VoyageBatchHarvester`` (Batch API, 33% off) in
this instance's own ledger namespace: the run loads the batches that ended, submits what is neither
embedded nor in flight, and ends — ``<name>_sensor`` requests the next run when a batch ends. Either way the
destination table and the vector store are looked up first, so nothing is paid for twice.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from harvest_defs.components.embeddings_rows import (
    CURRENT_COLUMNS,
    HINTS,
    EmbedOutcome,
    UpstreamError,
    reconciled_tables,
    upstream_texts,
)
from harvest_defs.components.embeddings_spec import EmbeddingsSpec
from harvest_defs.defs.metadata import as_metadata, usd
from harvest_defs.defs.resources import DUCKDB_POOL, HarvestStoreResource, VoyageResource

Embed = Callable[[list[dict[str, Any]]], tuple[Iterator[Any], Callable[[], list[str]]]]


def batch_harvester(spec: EmbeddingsSpec, voyage: VoyageResource, store: HarvestStoreResource) -> Any:
    """The library's Batch API client: this instance's model, dimension, input type, ledger namespace."""
    from harvest_defs.harvest.voyage import VoyageBatchHarvester

    return VoyageBatchHarvester(
        api_key=voyage.api_key,
        base_url=voyage.resolved_base_url(),
        model=spec.model,
        output_dimension=spec.output_dimension,
        input_type=spec.input_type,
        ledger_path=store.ledger_path,
        raw_dir=store.raw_dir,
        provider=spec.provider,
    )


def _embedder(
    spec: EmbeddingsSpec,
    voyage: VoyageResource,
    store: HarvestStoreResource,
    partition: str,
    log: Any,
    outcome: EmbedOutcome,
) -> Embed:
    """``embed(todo)``: the Batch API when ``todo`` reaches the threshold or a batch of ours is open."""

    def embed(todo: list[dict[str, Any]]) -> tuple[Iterator[Any], Callable[[], list[str]]]:
        from harvest_defs.defs.batches import has_open_batches

        ledger = store.ledger()
        open_batches = has_open_batches(ledger, spec.provider) and bool(
            ledger.in_flight(spec.provider, partition) or ledger.ended_uncollected(spec.provider, partition)
        )
        if len(todo) >= spec.batch_threshold or open_batches:
            outcome.mode = "batch"
            return _batch(spec, voyage, store, partition, log, outcome, todo)
        outcome.mode = "realtime"
        if not todo:
            return iter(()), list
        from harvest_defs.harvest.voyage.resource import embedding_tables

        tables = embedding_tables(
            todo,
            spec.model,
            spec.input_type,
            output_dimension=spec.output_dimension,
            api_key=voyage.api_key,
            base_url=voyage.resolved_base_url(),
            mode="realtime",
            rpm=voyage.rpm,
            tpm=voyage.tpm,
            raw_dir=store.raw_dir,
            table_name=spec.table,
        )
        return tables, list

    return embed


def _batch(
    spec: EmbeddingsSpec,
    voyage: VoyageResource,
    store: HarvestStoreResource,
    partition: str,
    log: Any,
    outcome: EmbedOutcome,
    todo: list[dict[str, Any]],
) -> tuple[Iterator[Any], Callable[[], list[str]]]:
    """Rows free from the caches, then this partition's ended batches; then submit what is still missing.

    The ledger makes the submit idempotent: texts whose request succeeded (just collected) or is still in
    a batch are not sent again, so a sensor-requested run never creates a second batch.
    """
    harvester = batch_harvester(spec, voyage, store)
    pending: list[str] = []

    def tables() -> Iterator[Any]:
        from harvest_defs.defs.batches import newest_first, poll_ended_batches
        from harvest_defs.harvest.voyage.packing import prepare_inputs
        from harvest_defs.harvest.voyage.resource import reuse_cached

        prepared = prepare_inputs(todo, harvester.spec, truncation=True, strict=False)
        rest, reused = reuse_cached(
            prepared.inputs, spec.model, spec.input_type, spec.dims, harvester.store, spec.table
        )
        if reused is not None:
            yield reused
        ended = poll_ended_batches(harvester.ledger, spec.provider, harvester.poll, log, partition)
        for batch in newest_first(ended):
            yield from harvester.collect(batch.batch_id)
            outcome.collected.append(batch.batch_id)
        report = harvester.submit(
            [{"id": i.embedding_id, "text": i.text} for i in rest], partition_key=partition
        )
        outcome.submitted.extend(report.batch_ids)
        if report.batch_ids:
            log.info(
                f"{spec.name}: submitted Voyage batch(es) {report.batch_ids}; {spec.sensor_name} collects"
            )
        pending.extend(i.embedding_id for i in rest)

    return tables(), lambda: pending


def build_embeddings_asset(
    spec: EmbeddingsSpec, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        deps=[dg.AssetKey.from_user_string(spec.upstream)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"voyage", "dlt", "duckdb"},
        pool=DUCKDB_POOL,
        description=(
            f"Voyage {spec.model} embeddings (FLOAT[{spec.dims}], input_type {spec.input_type}) of "
            f"{spec.upstream_table}.{spec.text_column} in {spec.qualified_table}; real-time below "
            f"{spec.batch_threshold} texts, Batch API at or above."
        ),
    )
    def embeddings(
        context: dg.AssetExecutionContext, store: HarvestStoreResource, voyage: VoyageResource
    ) -> dg.MaterializeResult:
        from harvest_defs.components.harvest_spec import ALL_ROWS
        from harvest_defs.defs.warehouse import partition_rows
        from harvest_defs.harvest.pricing import estimate_voyage_usd

        started = time.monotonic()
        partition = context.partition_key if partitions_def else None
        key = partition or ALL_ROWS
        outcome = EmbedOutcome()
        try:
            texts = upstream_texts(spec, store, partition, outcome)
        except UpstreamError as exc:
            raise dg.Failure(str(exc)) from exc
        current = {
            r["embedding_id"]: tuple(r[c] for c in CURRENT_COLUMNS)
            for r in partition_rows(store, spec.qualified_table, "embedding_id", CURRENT_COLUMNS, key)
        }
        embed = _embedder(spec, voyage, store, key, context.log, outcome)
        from harvest_defs.defs.library_log import library_progress

        with library_progress(context.log):  # the library's per-window counts in the run log
            _load(spec, store, reconciled_tables(spec, texts, current, key, embed, outcome))
        mode = outcome.mode
        if outcome.collected:  # only after the load succeeded: a failed load collects them again
            harvester = batch_harvester(spec, voyage, store)
            for batch_id in outcome.collected:
                harvester.mark_collected(batch_id)
        context.log.info(
            f"{spec.name}[{key}]: {outcome.texts} texts ({mode}), {outcome.written} rows written, "
            f"{outcome.unchanged} unchanged, {outcome.failed} failed, {outcome.in_flight} in flight, "
            f"{len(outcome.deleted)} deleted"
        )
        return dg.MaterializeResult(
            metadata=as_metadata(
                {
                    "table": spec.qualified_table,
                    "texts_in_partition": outcome.texts,
                    "texts_skipped_null": outcome.skipped_null,
                    "embeddings_written": outcome.written - outcome.failed,
                    "texts_unchanged": outcome.unchanged,
                    "embeddings_failed": outcome.failed,
                    "embeddings_deleted": len(outcome.deleted),
                    "texts_in_flight": outcome.in_flight,
                    "total_tokens": outcome.tokens,
                    "model": spec.model,
                    "dimensions": spec.dims,
                    "input_type": spec.input_type,
                    "api_mode": mode,
                    "est_usd": usd(estimate_voyage_usd(spec.model, outcome.tokens, batch=mode == "batch")),
                    "voyage_batches_collected": dg.MetadataValue.json(outcome.collected)
                    if outcome.collected
                    else None,
                    "voyage_batches_pending": dg.MetadataValue.json(outcome.submitted)
                    if outcome.submitted
                    else None,
                    "first_failures": dg.MetadataValue.json(outcome.failures) if outcome.failures else None,
                    "duration_s": round(time.monotonic() - started, 3),
                }
            )
        )

    return embeddings


def _load(spec: EmbeddingsSpec, store: HarvestStoreResource, tables: Iterator[Any]) -> None:
    """Merge on ``embedding_id`` into ``harvest.<table>`` (native FLOAT[dims]) under the write lock.

    Declared unique (``defs/unique_merge.py``: no dlt dedup window, bounded load memory). Repeats can only
    come from the Batch API path, whose cache hits and newest batches come first (first row wins).
    """
    from harvest_defs.defs.unique_merge import load_unique
    from harvest_defs.harvest.voyage import embedding_column_hints

    load_unique(
        store,
        f"harvest_embeddings_{spec.name}",
        tables,
        name=spec.table,
        primary_key="embedding_id",
        columns={**HINTS, **embedding_column_hints(spec.dims, spec.model)},
    )
