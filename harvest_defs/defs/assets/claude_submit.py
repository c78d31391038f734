"""``claude_summary_batches``: submit a Message Batch per partition and return at once.

Every figure is the partition's own (``context.add_asset_metadata(..., partition_key=p)``): a backfill
over three partitions is one run, but each partition's materialization shows only its requests, tokens
and estimate, so summing partitions in the UI gives the run's total rather than three times it.

``est_max_usd`` is an upper bound made before sending: input tokens as the API counts them (the same
function the emulator bills with), output at every request's full ``max_tokens``. What was actually billed
is ``billed_usd`` on ``claude_summaries``, from the results' usage.
"""

import time
from typing import Any

import dagster as dg

from harvest_defs.defs.assets.documents import DOCUMENTS_KEY, read_snapshot
from harvest_defs.defs.claude_rows import build_prompts
from harvest_defs.defs.errors import describe_api_error
from harvest_defs.defs.metadata import as_metadata, usd
from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource
from harvest_defs.defs.retry_log import sdk_retry_warnings

CLAUDE_PROVIDER = "claude"
SUBMIT_KEY = dg.AssetKey("claude_summary_batches")

COST_NOTE = (
    "est_max_usd: upper bound before sending, at batch prices: est_input_tokens (counted as the API "
    "counts them) + max_output_tokens (every request at its full max_tokens). The billed cost is "
    "billed_usd on claude_summaries, from the results' usage (cache tokens priced)."
)


def submit_metadata(report: Any, model: str, batch_ids: list[str], invalid: int) -> dict[str, Any]:
    """One partition's submit figures (nothing of the other partitions of the run)."""
    return as_metadata(
        {
            "requests_sent": report.requests_sent,
            "requests_cached": report.requests_cached,
            "requests_resumed": report.requests_resumed,
            "requests_invalid": invalid,
            "requests_lost": report.requests_lost or None,
            "est_input_tokens": report.estimated_input_tokens,
            "max_output_tokens": report.max_output_tokens,
            "est_max_usd": usd(report.estimated_cost_usd),
            "cost_note": dg.MetadataValue.text(COST_NOTE),
            "batch_ids": dg.MetadataValue.json(batch_ids),
            "model": model,
        }
    )


def build_submit_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=SUBMIT_KEY.path[-1],
        deps=[DOCUMENTS_KEY],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="harvest",
        kinds={"anthropic"},
        description=(
            "Submits a Message Batch per partition (only uncached requests) and returns at once. " + COST_NOTE
        ),
    )
    def claude_summary_batches(
        context: dg.AssetExecutionContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.MaterializeResult:
        """One batch (or more, past the API limits) per partition, so each partition is collected alone.

        A backfill over a range is a single run (single-run policy): submitting only waits for the create
        calls, and the ledger records each batch under its partition for the sensor.
        """
        started = time.monotonic()
        harvester = anthropic.harvester(store, log=context.log.info)
        failed: dict[str, str] = {}
        base_url = anthropic.resolved_base_url()
        for partition in context.partition_keys:
            # One partition's failure (an API error, a missing snapshot) never stops the others of a
            # backfill: each is submitted on its own, and the run fails at the end naming the failed ones.
            try:
                prompts, truncated = build_prompts(read_snapshot(store, partition), anthropic)
                with sdk_retry_warnings(context.log, base_url):
                    report = harvester.submit(
                        prompts,
                        model=anthropic.model,
                        max_tokens=anthropic.max_tokens,
                        system_prompt=anthropic.system_prompt,
                        temperature=anthropic.temperature,
                        partition_key=partition,
                    )
            except Exception as exc:
                failed[partition] = describe_api_error(exc, base_url)
                context.log.error(f"partition {partition!r}: submit failed: {failed[partition]}")
                continue
            # The sensor collects the partition once every batch it needs has ended (none: at once).
            harvester.ledger.record_submission(CLAUDE_PROVIDER, partition, report.batch_ids)
            invalid = len(report.invalid)
            context.add_asset_metadata(
                submit_metadata(report, anthropic.model, list(report.batch_ids), invalid),
                partition_key=partition,
            )
            if truncated:
                context.log.warning(
                    f"partition {partition!r}: {len(truncated)} document(s) truncated to fit "
                    f"{anthropic.model}'s context window: {sorted(truncated)[:10]}"
                )
            context.log.info(
                f"partition {partition!r}: {report.requests_sent} requests sent in "
                f"{len(report.new_batch_ids)} new batch(es), {report.requests_cached} cached, "
                f"{report.requests_resumed} resumed, {invalid} invalid; est. at most "
                f"${report.estimated_cost_usd:.4f}"
            )
        if failed:
            raise dg.Failure(
                f"submit failed for {len(failed)} partition(s); the others were submitted: "
                + "; ".join(f"{p}: {m}" for p, m in sorted(failed.items())),
                metadata={"failed_partitions": dg.MetadataValue.json(failed)},
            )
        # Only what is true of every partition of the run goes on all of them.
        return dg.MaterializeResult(metadata={"run_duration_s": round(time.monotonic() - started, 3)})

    return claude_summary_batches
