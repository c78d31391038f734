"""A schedule that picks up new and changed documents.

Each tick fingerprints every collection (file names, sizes, mtimes: no reads) and requests
``documents`` + ``claude_summary_batches`` for a collection only when its fingerprint differs from the one
recorded in that partition's latest ``documents`` materialization (schedules have no cursor, and their run
keys only deduplicate within a tick, so the instance's own record is the memory).
Even when it does run, only new or changed documents cost anything: the harvester's cache skips every
request it already has a successful result for.
"""

import os

import dagster as dg

from harvest_defs.defs.assets.claude import SUBMIT_KEY
from harvest_defs.defs.assets.documents import DOCUMENTS_KEY
from harvest_defs.defs.corpus import collection_fingerprint
from harvest_defs.defs.resources import HarvestStoreResource

DEFAULT_CRON = "0 * * * *"


def last_fingerprint(instance: dg.DagsterInstance, collection: str) -> str | None:
    """The corpus fingerprint recorded by the latest ``documents`` materialization of a partition."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DOCUMENTS_KEY, asset_partitions=[collection]),
        limit=1,
        ascending=False,
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("corpus_fingerprints")
    recorded = value.value if value is not None else None
    return str(recorded.get(collection)) if isinstance(recorded, dict) and collection in recorded else None


def build_new_documents_schedule(partitions_def: dg.StaticPartitionsDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="new_documents_schedule",
        cron_schedule=os.environ.get("HARVEST_SCHEDULE_CRON", DEFAULT_CRON),
        target=[DOCUMENTS_KEY, SUBMIT_KEY],
        description="Submits Message Batches for collections whose documents changed since the last tick.",
    )
    def new_documents_schedule(
        context: dg.ScheduleEvaluationContext, store: HarvestStoreResource
    ) -> list[dg.RunRequest]:
        corpus = store.corpus_path
        requests = []
        for collection in partitions_def.get_partition_keys():
            fingerprint = collection_fingerprint(corpus, collection)
            if last_fingerprint(context.instance, collection) == fingerprint:
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{collection}-{fingerprint}",
                    partition_key=collection,
                    asset_selection=[DOCUMENTS_KEY, SUBMIT_KEY],
                    tags={"harvest/corpus_fingerprint": fingerprint},
                )
            )
        return requests

    return new_documents_schedule
