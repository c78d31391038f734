"""``<name>_sensor``: one sensor per ``ClaudeBatchHarvest`` instance, over the instance's own submissions.

Like ``claude_batch_sensor`` (``defs/sensors.py``): it reads the SQLite ledger, polls the in-flight
batches of the instance's open submissions, and requests one collect run per partition once they have
all ended (the run key names the submission, the cursor remembers it: never twice). For a partitioned
instance it also keeps the dynamic partitions equal to the source's values, so new values need no reload
(file sources only: a sensor never opens the warehouse DuckDB file, which a run may be writing).
"""

import json

import dagster as dg

from harvest_defs.components.harvest_spec import ALL_ROWS, HarvestSpec
from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource

MAX_CURSOR_IDS = 5000


def build_harvest_sensor(spec: HarvestSpec, interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[dg.AssetKey(spec.name)],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Polls {spec.name}'s Message Batches; requests its collect run when a submission ended.",
    )
    def harvest_sensor(
        context: dg.SensorEvaluationContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.SensorResult:
        from harvest_defs.defs.batches import poll_batches
        from harvest_defs.harvest.ledger import COLLECTED, ENDED, LOST

        partition_requests = _partition_requests(context, spec, store)
        ledger = store.ledger()
        submissions = ledger.open_submissions(spec.provider)
        requested = list(json.loads(context.cursor)) if context.cursor else []
        runs = []
        if submissions:
            harvester = anthropic.harvester(store)
            ready: dict[str, list[int]] = {}
            for submission in submissions:
                poll_batches(ledger, harvester.poll, submission.batch_ids, context.log)
                rows = [ledger.get(b) for b in submission.batch_ids]
                if any(r is not None and r.status not in (ENDED, COLLECTED, LOST) for r in rows):
                    continue
                if str(submission.submission_id) not in requested:
                    ready.setdefault(str(submission.partition_key), []).append(submission.submission_id)
            for partition, ids in sorted(ready.items()):
                requested.extend(str(i) for i in ids)
                runs.append(
                    dg.RunRequest(
                        run_key=f"collect-{spec.name}-{partition}-{max(ids)}",
                        partition_key=None if partition == ALL_ROWS else partition,
                        asset_selection=[dg.AssetKey(spec.name)],
                        tags={"harvest/provider": spec.provider},
                    )
                )
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=partition_requests,
            cursor=json.dumps(requested[-MAX_CURSOR_IDS:]),
            skip_reason=None if runs or partition_requests else "nothing ended and no new partition",
        )

    return harvest_sensor


def _partition_requests(
    context: dg.SensorEvaluationContext, spec: HarvestSpec, store: HarvestStoreResource
) -> list[dg.AddDynamicPartitionsRequest]:
    """Add the values the source has and the instance lacks (never removes: a vanished value's rows are
    deleted by its next collect, which needs the key)."""
    if spec.partition_column is None or spec.source.reads_warehouse:
        return []
    from harvest_defs.components.sources import distinct_values

    known = set(context.instance.get_dynamic_partitions(spec.partitions_name))
    new = [v for v in distinct_values(spec.source, store, spec.partition_column) if v not in known]
    if not new:
        return []
    context.log.info(f"{spec.name}: new partition(s) {new}")
    return [dg.AddDynamicPartitionsRequest(partitions_def_name=spec.partitions_name, partition_keys=new)]
