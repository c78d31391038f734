"""The assets of one ``ClaudeBatchHarvest`` instance: ``<name>_batches`` (submit) and ``<name>`` (collect).

The same protocol as the chain's ``claude_summary_batches`` / ``claude_summaries``, on the same library
calls: submit sends only requests the ledger has no result for (content-addressed, so never twice),
after checking the budget; the instance's sensor requests the collect run when every batch of an open
submission has ended; collect *reconciles* the instance's table to the source's current rows (rows from
the raw results on disk, failures as rows, rows of vanished ids hard-deleted) and closes the submission.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from harvest_defs.components.budget import SENT_KEY, check_budget, spent_before
from harvest_defs.components.harvest_rows import Outcome, reconcile
from harvest_defs.components.harvest_spec import ALL_ROWS, HarvestSpec
from harvest_defs.components.sources import read_rows
from harvest_defs.defs.metadata import as_metadata, failures_markdown, usd
from harvest_defs.defs.resources import DUCKDB_POOL, AnthropicResource, HarvestStoreResource


def _where(spec: HarvestSpec, partition: str | None) -> tuple[str, str] | None:
    return (spec.partition_column, partition) if spec.partition_column and partition else None


def partition_list(context: dg.AssetExecutionContext) -> list[str | None]:
    return (
        list(context.partition_keys)
        if context.has_partition_key_range or context.has_partition_key
        else [None]
    )


def build_submit_asset(
    spec: HarvestSpec, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.submit_name,
        deps=[dg.AssetKey.from_user_string(d) for d in spec.deps],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        group_name=spec.name,
        kinds={"anthropic"},
        description=(
            f"Submits {spec.name}'s uncached requests as Message Batches ({spec.model}) after checking the "
            "budget; returns at once."
        ),
    )
    def submit(
        context: dg.AssetExecutionContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.MaterializeResult:
        """Every partition is prepared and priced first: over a budget, nothing is sent at all."""
        from harvest_defs.harvest.claude.settings import PROVIDER
        from harvest_defs.harvest.ledger import LOST_REQUEST, SUBMITTED, SUCCEEDED

        started = time.monotonic()
        harvester = anthropic.harvester(store)
        plans = []
        to_send_all = []
        for partition in partition_list(context):
            prepared = spec.prepare(harvester, read_rows(spec.source, store, where=_where(spec, partition)))
            states = harvester.ledger.request_states(PROVIDER, (r.request_hash for r in prepared.requests))
            seen: set[str] = set()
            for r in prepared.requests:
                if states.get(r.request_hash) not in (SUCCEEDED, SUBMITTED, LOST_REQUEST) and (
                    r.request_hash not in seen
                ):
                    seen.add(r.request_hash)
                    to_send_all.append(r)
            plans.append((partition, prepared))
        est, in_tokens, out_tokens = spec.upper_bound_usd(to_send_all)
        spent = spent_before(context.instance, spec) if spec.max_usd_total is not None else None
        estimate = {
            "est_usd_upper_bound": usd(est),
            "requests_to_send": len(to_send_all),
            "est_input_tokens": in_tokens,
            "est_output_tokens_max": out_tokens,
            "max_usd": spec.max_usd,
            "max_usd_scope": "per submit run",
            "max_usd_total": spec.max_usd_total,
            "est_usd_sent_before": usd(spent) if spent is not None else None,
            "model": spec.model,
            "prefix_cached": spec.cache_prefix,
            "prefix_tokens": spec.prefix_tokens,
        }
        context.log.info(f"{spec.name}: {len(to_send_all)} request(s) to send, at most ${est:.6f}")
        check_budget(spec, est, len(to_send_all), estimate, spent)
        sent = cached = resumed = 0
        batches: dict[str, list[str]] = {}
        for partition, prepared in plans:
            report = harvester.submit_prepared(
                prepared, partition_key=spec.ledger_partition(partition), system_prompt=spec.shared_prefix()
            )
            key = partition or ALL_ROWS
            harvester.ledger.record_submission(spec.provider, key, report.batch_ids)
            batches[key] = list(report.batch_ids)
            sent += report.requests_sent
            cached += report.requests_cached
            resumed += report.requests_resumed
        return dg.MaterializeResult(
            metadata=as_metadata(
                {
                    **estimate,
                    "requests_sent": sent,
                    SENT_KEY: usd(est) if sent else 0.0,
                    "requests_cached": cached,
                    "requests_resumed": resumed,
                    "batches_per_partition": dg.MetadataValue.json(batches),
                    "duration_s": round(time.monotonic() - started, 3),
                }
            )
        )

    return submit


def build_collect_asset(
    spec: HarvestSpec, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        deps=[dg.AssetKey(spec.submit_name)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"dlt", "duckdb"},
        pool=DUCKDB_POOL,
        description=(
            f"{spec.qualified_table}: one row per source row, reconciled to the source's current rows"
            + (f"; typed columns {sorted(spec.output_schema.columns)}" if spec.output_schema else "")
        ),
    )
    def collect(
        context: dg.AssetExecutionContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.MaterializeResult:
        from harvest_defs.defs.assets.claude import close_submissions
        from harvest_defs.defs.batches import poll_batches
        from harvest_defs.harvest.pricing import estimate_batch_usd, estimate_cache_saving_usd

        started = time.monotonic()
        partition = context.partition_key if partitions_def else None
        key = partition or ALL_ROWS
        harvester = anthropic.harvester(store)
        for submission in harvester.ledger.open_submissions(spec.provider, key):
            poll_batches(harvester.ledger, harvester.poll, submission.batch_ids, context.log)
        rows = read_rows(spec.source, store, where=_where(spec, partition))
        outcome = Outcome()
        tables = reconcile(spec, harvester, store, key, rows, outcome)
        from harvest_defs.defs.library_log import library_progress

        with library_progress(context.log):  # the harvester's counts in the run log
            _load(spec, store, tables)
        collected = close_submissions(harvester, key, outcome, context.log.info, provider=spec.provider)
        context.log.info(
            f"{spec.name}[{key}]: {outcome.rows} rows, {outcome.written} written, {outcome.unchanged} "
            f"unchanged, {len(outcome.deleted)} deleted, {outcome.schema_invalid} schema-invalid, "
            f"{outcome.in_flight} in flight"
        )
        return dg.MaterializeResult(
            metadata=as_metadata(
                {
                    "dagster/row_count": outcome.rows,
                    "table": spec.qualified_table,
                    "rows_written": outcome.written,
                    "rows_unchanged": outcome.unchanged,
                    "rows_deleted": len(outcome.deleted),
                    "requests_in_flight": outcome.in_flight,
                    "requests_succeeded": outcome.succeeded,
                    "requests_failed": outcome.failed,
                    "schema_invalid": outcome.schema_invalid,
                    "input_tokens": outcome.input_tokens,
                    "output_tokens": outcome.output_tokens,
                    "cache_creation_input_tokens": outcome.cache_write,
                    "cache_read_input_tokens": outcome.cache_read,
                    "cache_saving_usd": usd(
                        estimate_cache_saving_usd(spec.model, outcome.cache_read, outcome.cache_write)
                    ),
                    "est_usd": usd(
                        estimate_batch_usd(
                            spec.model,
                            outcome.input_tokens + outcome.cache_write + outcome.cache_read,
                            outcome.output_tokens,
                        )
                    ),
                    "batch_ids": dg.MetadataValue.json(collected),
                    "first_failures": dg.MetadataValue.md(failures_markdown(outcome.failures)),
                    "duration_s": round(time.monotonic() - started, 3),
                }
            )
        )

    return collect


def _load(spec: HarvestSpec, store: HarvestStoreResource, tables: Iterator[Any]) -> None:
    """Merge on ``custom_id`` into the warehouse under its write lock (``_deleted`` hard-deletes).

    Declared unique (``defs/unique_merge.py``: no dlt dedup window, bounded load memory); the reconciled
    tables hold each request's row once, and the filter drops any repeat (first wins).
    """
    from harvest_defs.components.harvest_rows import column_hints
    from harvest_defs.defs.unique_merge import load_unique

    load_unique(
        store,
        f"harvest_component_{spec.name}",
        tables,
        name=spec.table,
        primary_key="custom_id",
        columns=column_hints(spec),
    )
