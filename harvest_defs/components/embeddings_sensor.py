"""``<name>_sensor``: one sensor per generic ``VoyageEmbeddings`` instance.

Two jobs, both reading only the SQLite ledger and Dagster's event log (never the DuckDB files):
- **follow the upstream**: a new materialization of the upstream asset (of a partition) requests this
  instance's run for it, so a ClaudeBatchHarvest collect flows on into embeddings without a click;
- **poll the Batch API**: the instance's in-flight Voyage batches (its own ledger namespace) are polled
  every tick (progress logged), and a run is requested for a partition when one of its batches ended.
Each ended batch and each upstream materialization is requested once: the cursor remembers them.
"""

import json

import dagster as dg

from harvest_defs.components.embeddings_spec import EmbeddingsSpec
from harvest_defs.components.harvest_spec import ALL_ROWS
from harvest_defs.defs.resources import HarvestStoreResource, VoyageResource

MAX_CURSOR_IDS = 5000
MAX_RECORDS = 1000


def _cursor(raw: str | None) -> tuple[list[str], int]:
    data = json.loads(raw) if raw else {}
    return list(data.get("batches", [])), int(data.get("upstream", 0))


def build_embeddings_sensor(spec: EmbeddingsSpec, interval_seconds: int) -> dg.SensorDefinition:
    key = dg.AssetKey(spec.name)
    upstream = dg.AssetKey.from_user_string(spec.upstream)

    @dg.sensor(
        name=spec.sensor_name,
        minimum_interval_seconds=interval_seconds,
        asset_selection=[key],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Embeds {spec.upstream}'s new rows into {spec.name}; polls {spec.name}'s Voyage batches and "
            "collects a partition when one ends."
        ),
    )
    def embeddings_sensor(
        context: dg.SensorEvaluationContext, store: HarvestStoreResource, voyage: VoyageResource
    ) -> dg.SensorResult:
        from harvest_defs.defs.batches import has_open_batches, poll_ended_batches

        requested, after = _cursor(context.cursor)
        runs: dict[str | None, dg.RunRequest] = {}
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=upstream, after_storage_id=after or None),
            limit=MAX_RECORDS,
            ascending=True,
        ).records
        for record in records:
            after = max(after, record.storage_id)
            partition = record.partition_key if spec.partitioned else None
            if spec.partitioned and partition is None:
                continue
            runs[partition] = dg.RunRequest(
                run_key=f"embed-{spec.name}-{partition or ALL_ROWS}-{record.storage_id}",
                partition_key=partition,
                asset_selection=[key],
                tags={"harvest/provider": spec.provider},
            )
        ledger = store.ledger()
        if has_open_batches(ledger, spec.provider):  # else: no SDK import, no HTTP
            from harvest_defs.components.embeddings_assets import batch_harvester

            poll = batch_harvester(spec, voyage, store).poll
            seen = set(requested)
            for batch in poll_ended_batches(ledger, spec.provider, poll, context.log):
                if batch.batch_id in seen:
                    continue
                requested.append(batch.batch_id)
                partition = None if batch.partition_key in (None, ALL_ROWS) else batch.partition_key
                context.log.info(f"{spec.name}: Voyage batch {batch.batch_id} ended: requesting collection")
                runs.setdefault(
                    partition,
                    dg.RunRequest(
                        run_key=f"collect-{spec.provider}-{batch.batch_id}",
                        partition_key=partition,
                        asset_selection=[key],
                        tags={"harvest/batch_id": batch.batch_id, "harvest/provider": spec.provider},
                    ),
                )
        cursor = json.dumps({"batches": requested[-MAX_CURSOR_IDS:], "upstream": after})
        return dg.SensorResult(
            run_requests=list(runs.values()),
            cursor=cursor,
            skip_reason=None if runs else f"no new {spec.upstream} materialization and no ended Voyage batch",
        )

    return embeddings_sensor
