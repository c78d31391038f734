"""Claude Message Batches as two assets: submit (returns at once) and collect (``@dlt_assets``).

Submitting and collecting are separate so no run sleeps while a batch is processed (up to 24 h): the
submit asset records batch ids in the ledger (a *submission* of the partition) and ends;
``claude_batch_sensor`` polls the in-flight batches and requests ``claude_summaries`` for the partition
once every batch its submission needs has ended — at once when it needed none (all cache hits, deletes).
"""

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from harvest_defs.defs.assets.claude_submit import CLAUDE_PROVIDER, SUBMIT_KEY, build_submit_asset
from harvest_defs.defs.assets.documents import read_snapshot
from harvest_defs.defs.batches import poll_batches
from harvest_defs.defs.claude_rows import (
    CLAUDE_HINTS,
    DELETED,
    ClaudeReconcile,
    reconcile_tables,
)
from harvest_defs.defs.column_schema import CLAUDE_COLUMNS, column_schema_metadata, ours_first
from harvest_defs.defs.dlt_support import (
    AssetKeyTranslator,
    definition_pipeline,
    run_dlt_locked,
)
from harvest_defs.defs.errors import reraise_actionable
from harvest_defs.defs.metadata import as_metadata, failures_markdown, usd
from harvest_defs.defs.partition_figures import claude_figures
from harvest_defs.defs.resources import DUCKDB_POOL, AnthropicResource, HarvestStoreResource
from harvest_defs.defs.retry_log import sdk_retry_warnings
from harvest_defs.defs.warehouse import CLAUDE_TABLE

SUMMARIES_KEY = dg.AssetKey("claude_summaries")
BILLED_NOTE = (
    "billed_usd and the token counts are the partition's current claude_messages rows (cumulative, from "
    "DuckDB): their usage at batch prices, cache writes at 1.25x and reads at 0.1x input. The upper bound "
    "made before sending is est_max_usd on claude_summary_batches."
)

__all__ = [
    "CLAUDE_PROVIDER",
    "SUBMIT_KEY",
    "SUMMARIES_KEY",
    "build_collect_assets",
    "build_submit_asset",
    "claude_collect_source",
    "close_submissions",
]
CLAUDE_PIPELINE = "harvest_claude"


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
def claude_collect_source(rows: Callable[[], Iterator[Any]] | None = None, tally: Any = None) -> Any:
    """The partition's reconciled rows as Arrow tables; merge on ``custom_id``, ``_deleted`` hard-deletes."""

    from harvest_defs.harvest.dedup import MERGE_DISPOSITION, UniqueRows

    @dlt.resource(
        name="claude_messages",
        write_disposition=MERGE_DISPOSITION,
        primary_key="custom_id",
        columns=CLAUDE_HINTS,
    )
    def claude_messages() -> Iterator[Any]:
        unique = UniqueRows()  # one row per custom_id: the promise that lets dlt skip its dedup pass
        for table in rows() if rows is not None else ():
            table = unique(table)
            if tally is not None and table.num_rows and not table.column(DELETED)[0].as_py():
                tally.add(table)
            yield table

    return claude_messages


def close_submissions(
    harvester: Any, partition: str, outcome: Any, log: Any, provider: str = CLAUDE_PROVIDER
) -> list[str]:
    """Collect what no row needed (outcomes + raw file), mark batches collected, close what is done.

    ``provider`` is the submissions' namespace: the chain's ``claude``, or a component instance's own;
    ``outcome`` is anything with ``touched_batches`` (the chain's ``ClaudeReconcile``, a component's).
    """
    from harvest_defs.harvest.ledger import COLLECTED, ENDED, LOST

    done = []
    closed_batches: list[str] = []
    for submission in harvester.ledger.open_submissions(provider, partition):
        rows = [harvester.ledger.get(b) for b in submission.batch_ids]
        if any(r is not None and r.status not in (ENDED, COLLECTED, LOST) for r in rows):
            continue  # still waiting on a batch: a later run closes it
        for row in rows:
            if row is None or row.status != ENDED or row.batch_id is None:
                continue
            if row.batch_id not in outcome.touched_batches:
                for _ in harvester.collect(row.batch_id):  # raw results kept, outcomes recorded
                    pass
            harvester.mark_collected(row.batch_id)
            closed_batches.append(row.batch_id)
        done.append(submission.submission_id)
    harvester.ledger.close_submissions(done)
    if done:
        log(f"closed submission(s) {done} of partition {partition!r}")
    return closed_batches


def build_collect_assets(partitions_def: dg.PartitionsDefinition, pipelines_dir: str) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=claude_collect_source(),
        dlt_pipeline=definition_pipeline(CLAUDE_PIPELINE, pipelines_dir),
        name="claude_summaries",
        partitions_def=partitions_def,
        dagster_dlt_translator=AssetKeyTranslator(
            {"claude_messages": SUMMARIES_KEY},
            deps=[SUBMIT_KEY],
            description=(
                "claude_messages reconciled to the partition's current documents: results of ended "
                "batches and cache hits written, rows of removed documents deleted."
            ),
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
        partition = context.partition_key
        harvester = anthropic.harvester(store, log=context.log.info)
        retries = ExitStack()  # every SDK retry of this run (poll, results) is a warning in its log
        retries.enter_context(sdk_retry_warnings(context.log, anthropic.resolved_base_url()))
        for submission in harvester.ledger.open_submissions(CLAUDE_PROVIDER, partition):
            poll_batches(harvester.ledger, harvester.poll, submission.batch_ids, context.log)
        documents = read_snapshot(store, partition)
        tally = _Tally()
        outcome = ClaudeReconcile()
        rows = reconcile_tables(harvester, store, anthropic, partition, documents, outcome)
        source = claude_collect_source(rows=lambda: rows, tally=tally)
        try:
            results = run_dlt_locked(context, dlt, store, source, CLAUDE_PIPELINE)
        except Exception as exc:  # a connection/auth error says which endpoint and what to check
            reraise_actionable(exc, anthropic.resolved_base_url(), "ANTHROPIC_API_KEY")
            raise
        collected = close_submissions(harvester, partition, outcome, context.log.info)
        retries.close()
        _log_outcome(context, partition, outcome)
        figures = claude_figures(store, partition)
        if not (outcome.written or outcome.invalid or outcome.deleted or collected):
            # Nothing ended since the last collect (e.g. *Materialize all* ran this step right after the
            # submit): the figures below are the partition's standing totals, not a $0 run.
            context.log.info(
                f"partition {partition!r}: nothing new to collect ({outcome.in_flight} request(s) still in "
                "flight); claude_batch_sensor collects when the batch ends. Metadata shows the "
                "partition's current totals."
            )
        ours = as_metadata(
            {
                # The partition as it stands in the warehouse (cumulative: true whichever run wrote it).
                "billed_usd": usd(figures.billed_usd),
                "rows": figures.rows,
                "requests_succeeded": figures.succeeded,
                "requests_failed": figures.failed,
                "input_tokens": figures.input_tokens,
                "output_tokens": figures.output_tokens,
                "cache_write_tokens": figures.cache_write_tokens,
                "cache_read_tokens": figures.cache_read_tokens,
                "cost_note": dg.MetadataValue.text(BILLED_NOTE),
                # This run.
                "collected_batch_ids": dg.MetadataValue.json(collected),
                "rows_written": outcome.written + outcome.invalid,
                "rows_unchanged": outcome.unchanged,
                "rows_deleted": len(outcome.deleted),
                "requests_in_flight": outcome.in_flight,
                "documents": outcome.documents,
                "never_submitted": len(outcome.never_submitted) or None,
                "truncated_documents": dg.MetadataValue.json(outcome.truncated)
                if outcome.truncated
                else None,
                "lost_batches": dg.MetadataValue.json(outcome.lost_batches) if outcome.lost_batches else None,
                "first_failures": dg.MetadataValue.md(failures_markdown(tally.failures)),
                "duration_s": round(time.monotonic() - started, 3),
                **column_schema_metadata(store, CLAUDE_TABLE, CLAUDE_COLUMNS),
            }
        )
        for result in results:
            yield result._replace(metadata=ours_first(ours, result.metadata))

    return claude_summaries


def _log_outcome(context: dg.AssetExecutionContext, partition: str, outcome: ClaudeReconcile) -> None:
    context.log.info(
        f"partition {partition!r}: {outcome.documents} documents, {outcome.written} rows written, "
        f"{outcome.unchanged} unchanged, {len(outcome.deleted)} deleted, {outcome.invalid} invalid, "
        f"{outcome.in_flight} still in flight"
    )
    if outcome.deleted:
        context.log.info(f"deleted rows of documents no longer in {partition!r}: {outcome.deleted[:20]}")
    if outcome.never_submitted:
        context.log.warning(
            f"{len(outcome.never_submitted)} document(s) of {partition!r} have no result and were never "
            f"submitted (materialize claude_summary_batches): {outcome.never_submitted[:10]}"
        )
    for batch_id, reason in outcome.lost_batches.items():
        context.log.warning(f"batch {batch_id} is lost and was skipped: {reason}")
