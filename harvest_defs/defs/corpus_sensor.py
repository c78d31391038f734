"""``corpus_sensor``: keeps the partitions equal to the corpus's collections and harvests what changed.

Each tick it lists the collections (folder names only), fingerprints each (file names, sizes, mtimes:
no reads) and compares with what the latest ``documents`` materialization of that partition recorded:

- a new collection becomes a dynamic partition key, in the same tick as the run that harvests it;
- a changed collection gets a ``documents`` + ``claude_summary_batches`` run (only new content costs
  anything: the request cache is content-addressed);
- a removed collection gets one more such run, which snapshots it as empty — so its rows leave every
  table through the normal reconcile — and its key is deleted once no submission of it is open.

Why a sensor and not a schedule: only sensors can add and delete dynamic partitions, and with a cursor
they see every change once. Run keys carry the fingerprint, so the same state is never harvested twice.
"""

from __future__ import annotations

import os

import dagster as dg

from harvest_defs.defs.assets.claude import CLAUDE_PROVIDER, SUBMIT_KEY
from harvest_defs.defs.assets.documents import DOCUMENTS_KEY
from harvest_defs.defs.partitions import COLLECTIONS, COLLECTIONS_NAME
from harvest_defs.defs.resources import HarvestStoreResource


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


AUTO_SUBMIT_ENV = "HARVEST_CORPUS_AUTO_SUBMIT"


def auto_submit() -> bool:
    """``HARVEST_CORPUS_AUTO_SUBMIT=0``: partitions still follow the folders, but harvesting (which costs
    money) starts only when someone materializes it (the browser test clicks it in the UI)."""
    return os.environ.get(AUTO_SUBMIT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _harvest(collection: str, fingerprint: str, why: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"corpus-{collection}-{fingerprint}",
        partition_key=collection,
        asset_selection=[DOCUMENTS_KEY, SUBMIT_KEY],
        tags={"harvest/corpus_fingerprint": fingerprint, "harvest/reason": why},
    )


def build_corpus_sensor(interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="corpus_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[DOCUMENTS_KEY, SUBMIT_KEY],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds/removes a partition per corpus collection and submits Message Batches for collections "
            "whose files changed (a removed collection is emptied out of every table first)."
        ),
    )
    def corpus_sensor(context: dg.SensorEvaluationContext, store: HarvestStoreResource) -> dg.SensorResult:
        from harvest_defs.harvest.corpus import collection_fingerprint, discover_collections

        corpus = store.corpus_path
        names, refused = discover_collections(corpus)
        for folder in refused:
            context.log.warning(f"folder {folder.path} is not a collection: {folder.reason}")
        known = set(context.instance.get_dynamic_partitions(COLLECTIONS_NAME))
        added = [name for name in names if name not in known]
        runs: list[dg.RunRequest] = []
        auto = auto_submit()
        changed = []
        for name in names:
            fingerprint = collection_fingerprint(corpus, name)
            if last_fingerprint(context.instance, name) != fingerprint:
                changed.append(name)
                if auto:
                    runs.append(_harvest(name, fingerprint, "new" if name in added else "changed"))
        removable: list[str] = []
        ledger = store.ledger()
        for name in sorted(known - set(names)):
            empty = collection_fingerprint(corpus, name)  # the fingerprint of no files
            if last_fingerprint(context.instance, name) != empty:
                runs.append(_harvest(name, empty, "removed"))
            elif not ledger.open_submissions(CLAUDE_PROVIDER, name):
                removable.append(name)
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if added:
            requests.append(COLLECTIONS.build_add_request(added))
        if removable:
            requests.append(COLLECTIONS.build_delete_request(removable))
            context.log.info(f"removed collections emptied from every table, partitions deleted: {removable}")
        skip = None
        if not runs and not requests:
            skip = f"{len(names)} collection(s), none changed since their last `documents` snapshot"
            if changed and not auto:
                skip = (
                    f"{len(changed)} collection(s) changed ({', '.join(changed[:10])}) but "
                    f"{AUTO_SUBMIT_ENV}=0: materialize documents + claude_summary_batches to harvest them"
                )
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests, skip_reason=skip)

    return corpus_sensor
