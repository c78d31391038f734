"""Claude Message Batches as two assets: submit (returns at once) and collect (``@dlt_assets``).

Submitting and collecting are separate so no run sleeps while a batch is processed (up to 24 h): the
submit asset records batch ids in the ledger and ends; ``claude_batch_sensor`` polls the ledger's in-flight
batches and requests ``claude_summaries`` for the partition once a batch has ended.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from harvest_defs.defs.assets.documents import DOCUMENTS_KEY, read_snapshot
from harvest_defs.defs.batches import poll_ended_batches
from harvest_defs.defs.dlt_support import (
    AssetKeyTranslator,
    definition_pipeline,
    run_dlt_locked,
)
from harvest_defs.defs.metadata import as_metadata, failures_markdown, usd
from harvest_defs.defs.resources import DUCKDB_POOL, AnthropicResource, HarvestStoreResource

CLAUDE_PROVIDER = "claude"
SUBMIT_KEY = dg.AssetKey("claude_summary_batches")
SUMMARIES_KEY = dg.AssetKey("claude_summaries")
CLAUDE_PIPELINE = "harvest_claude"

PROMPT_TEMPLATE = "Summarize this document for a search index.\n\n<document>\n{text}\n</document>"


def build_prompts(documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One prompt per document; ``custom_id`` = document id so results map back without a lookup table."""
    return [
        {"custom_id": doc["document_id"], "text": PROMPT_TEMPLATE.format(text=doc["text"])}
        for doc in documents
    ]


def build_submit_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=SUBMIT_KEY.path[-1],
        deps=[DOCUMENTS_KEY],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="harvest",
        kinds={"anthropic"},
        description="Submits a Message Batch per partition (only uncached requests) and returns at once.",
    )
    def claude_summary_batches(
        context: dg.AssetExecutionContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.MaterializeResult:
        """One batch (or more, past the API limits) per partition, so each partition is collected alone.

        A backfill over a range is a single run (single-run policy): submitting only waits for the create
        calls, and the ledger records each batch under its partition for the sensor.
        """
        started = time.monotonic()
        harvester = anthropic.harvester(store)
        totals = {"sent": 0, "cached": 0, "resumed": 0, "invalid": 0}
        est_usd = 0.0
        batches: dict[str, list[str]] = {}
        for partition in context.partition_keys:
            report = harvester.submit(
                build_prompts(read_snapshot(store, partition)),
                model=anthropic.model,
                max_tokens=anthropic.max_tokens,
                system_prompt=anthropic.system_prompt,
                temperature=anthropic.temperature,
                partition_key=partition,
            )
            batches[partition] = list(report.batch_ids)
            invalid = report.invalid if isinstance(report.invalid, int) else len(report.invalid)
            totals["sent"] += report.requests_sent
            totals["cached"] += report.requests_cached
            totals["resumed"] += report.requests_resumed
            totals["invalid"] += invalid
            est_usd += float(report.estimated_cost_usd or 0.0)
            context.log.info(
                f"partition {partition!r}: {report.requests_sent} requests sent in "
                f"{len(report.batch_ids)} batch(es), {report.requests_cached} cached, "
                f"{report.requests_resumed} resumed, {invalid} invalid"
            )
        batch_ids = [b for ids in batches.values() for b in ids]
        return dg.MaterializeResult(
            metadata=as_metadata(
                {
                    "batch_ids": dg.MetadataValue.json(batch_ids),
                    "batches_per_partition": dg.MetadataValue.json(batches),
                    "requests_sent": totals["sent"],
                    "requests_cached": totals["cached"],
                    "requests_resumed": totals["resumed"],
                    "requests_invalid": totals["invalid"],
                    "est_usd": usd(est_usd),
                    "model": anthropic.model,
                    "duration_s": round(time.monotonic() - started, 3),
                }
            )
        )

    return claude_summary_batches


class _Tally:
    """Counts what flows from the raw results into dlt, for metadata, without a second pass."""

    def __init__(self) -> None:
        self.rows = 0
        self.succeeded = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.failures: list[dict[str, Any]] = []

    def add(self, table: Any) -> None:
        import pyarrow.compute as pc

        self.rows += table.num_rows
        success = table.column("success")
        self.succeeded += int(pc.sum(pc.cast(success, "int64")).as_py() or 0)
        for column in ("input_tokens", "output_tokens"):
            if column in table.column_names:
                total = int(pc.sum(table.column(column)).as_py() or 0)
                setattr(self, column, getattr(self, column) + total)
        if len(self.failures) < 10:
            failed = table.filter(pc.invert(pc.fill_null(success, False)))
            keep = [c for c in ("custom_id", "error_type", "error") if c in failed.column_names]
            self.failures.extend(failed.select(keep).slice(0, 10).to_pylist())


@dlt.source(name="claude")
def claude_collect_source(harvester: Any = None, batch_ids: Sequence[str] = (), tally: Any = None) -> Any:
    """Rows of ended batches as Arrow tables; merge on ``custom_id`` so a re-collect never duplicates."""

    from harvest_defs.harvest.dedup import MERGE_DISPOSITION, UniqueRows

    @dlt.resource(name="claude_messages", write_disposition=MERGE_DISPOSITION, primary_key="custom_id")
    def claude_messages() -> Iterator[Any]:
        # Newest batch first and one row per custom_id: the promise that lets dlt skip its dedup pass.
        unique = UniqueRows()
        for batch_id in reversed(batch_ids):
            for collected in harvester.collect(batch_id):
                table = unique(collected)
                if tally is not None:
                    tally.add(table)
                yield table

    return claude_messages


def build_collect_assets(partitions_def: dg.PartitionsDefinition, pipelines_dir: str) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=claude_collect_source(),
        dlt_pipeline=definition_pipeline(CLAUDE_PIPELINE, pipelines_dir),
        name="claude_summaries",
        partitions_def=partitions_def,
        dagster_dlt_translator=AssetKeyTranslator(
            {"claude_messages": SUMMARIES_KEY},
            deps=[SUBMIT_KEY],
            description="Results of ended Message Batches, loaded into claude_messages (merge on custom_id).",
        ),
        pool=DUCKDB_POOL,
    )
    def claude_summaries(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        store: HarvestStoreResource,
        anthropic: AnthropicResource,
    ) -> Iterator[dg.MaterializeResult]:
        started = time.monotonic()
        harvester = anthropic.harvester(store)
        ended = poll_ended_batches(
            harvester.ledger, CLAUDE_PROVIDER, harvester.poll, context.log.info, context.partition_key
        )
        batch_ids = [batch.batch_id for batch in ended]
        tally = _Tally()
        source = claude_collect_source(harvester=harvester, batch_ids=batch_ids, tally=tally)
        results = run_dlt_locked(context, dlt, store, source, CLAUDE_PIPELINE)
        for batch_id in batch_ids:
            harvester.mark_collected(batch_id)
        from harvest_defs.harvest.pricing import estimate_batch_usd

        extra = {
            "batch_ids": dg.MetadataValue.json(batch_ids),
            "requests_succeeded": tally.succeeded,
            "requests_failed": tally.rows - tally.succeeded,
            "input_tokens": tally.input_tokens,
            "output_tokens": tally.output_tokens,
            "est_usd": usd(estimate_batch_usd(anthropic.model, tally.input_tokens, tally.output_tokens)),
            "first_failures": dg.MetadataValue.md(failures_markdown(tally.failures)),
            "duration_s": round(time.monotonic() - started, 3),
        }
        for result in results:
            yield result._replace(metadata={**(result.metadata or {}), **extra})

    return claude_summaries
