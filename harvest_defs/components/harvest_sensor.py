"""``<name>_sensor``: one sensor per ``ClaudeBatchHarvest`` instance, over the instance's own submissions.

Like ``claude_batch_sensor`` (``defs/sensors.py``): it reads the SQLite ledger, polls the in-flight
batches of the instance's open submissions, and requests one collect run per partition once they have
all ended (the run key names the submission, the cursor remembers it: never twice). For a partitioned
instance it also keeps the dynamic partitions equal to the source's values — new values added, vanished
ones emptied (their rows hard-deleted by one collect run) then removed — so no reload is needed (file and
corpus sources only: a sensor never opens the warehouse DuckDB file, which a run may be writing).
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

        partition_requests, runs = _partition_requests(context, spec, store)
        ledger = store.ledger()
        submissions = ledger.open_submissions(spec.provider)
        requested = list(json.loads(context.cursor)) if context.cursor else []
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


def _last_collect(instance: dg.DagsterInstance, spec: HarvestSpec, partition: str) -> tuple[int, int] | None:
    """(rows the latest collect of ``partition`` left in the table, its storage id); None: never collected."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(spec.name), asset_partitions=[partition]),
        limit=1,
        ascending=False,
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("dagster/row_count")
    rows = int(value.value) if value is not None and isinstance(value.value, int) else 0
    return rows, records[0].storage_id


def _partition_requests(
    context: dg.SensorEvaluationContext, spec: HarvestSpec, store: HarvestStoreResource
) -> tuple[list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest], list[dg.RunRequest]]:
    """Keep the dynamic partitions equal to the source's values, like ``corpus_sensor`` does for folders.

    A new value is added. A value gone from the source first gets one collect run, which reconciles its
    rows to the source's (none: every row of it is hard-deleted); once its latest collect left 0 rows and
    no submission of it is open, the key is deleted. So no row outlives its partition key.
    """
    if spec.partition_column is None or spec.source.reads_warehouse:
        return [], []
    from harvest_defs.components.sources import distinct_values

    known = set(context.instance.get_dynamic_partitions(spec.partitions_name))
    values = distinct_values(spec.source, store, spec.partition_column)
    new = [v for v in values if v not in known]
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    runs: list[dg.RunRequest] = []
    if new:
        context.log.info(f"{spec.name}: new partition(s) {new}")
        requests.append(
            dg.AddDynamicPartitionsRequest(partitions_def_name=spec.partitions_name, partition_keys=new)
        )
    ledger = store.ledger()
    removable = []
    for gone in sorted(known - set(values)):
        last = _last_collect(context.instance, spec, gone)
        if last is not None and last[0]:  # its rows are still in the table: one collect empties them
            runs.append(
                dg.RunRequest(
                    run_key=f"empty-{spec.name}-{gone}-{last[1]}",
                    partition_key=gone,
                    asset_selection=[dg.AssetKey(spec.name)],
                    tags={"harvest/provider": spec.provider, "harvest/reason": "partition value removed"},
                )
            )
        elif not ledger.open_submissions(spec.provider, gone):
            removable.append(gone)
    if removable:
        context.log.info(
            f"{spec.name}: value(s) gone from the source, rows deleted, partitions removed: {removable}"
        )
        requests.append(
            dg.DeleteDynamicPartitionsRequest(
                partitions_def_name=spec.partitions_name, partition_keys=removable
            )
        )
    return requests, runs
