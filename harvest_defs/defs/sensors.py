"""Sensors: poll in-flight batches from the ledger and request the collecting run when they end.

The sensors read the SQLite ledger (safe across processes) and the providers' batch status endpoints —
never the DuckDB files, which a run may be writing. ``claude_batch_sensor`` works on *submissions* (a
partition's submit and the batches it needs, possibly none): one collect run per partition once they
have all ended or been lost, so a submit that was all cache hits (a rename, a revert, a delete) is
reconciled too. Each submission is requested once, ever: the ``run_key`` names it (Dagster skips a run key
it has seen) and the cursor remembers it, so a restarted daemon does not ask again. One batch that fails
to poll, or that the API no longer knows, never stops the tick for the others (``defs/batches.py``).
"""

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from harvest_defs.defs.assets.answers import RAG_ANSWERS_BATCHES, RAG_ANSWERS_KEY
from harvest_defs.defs.assets.chunks import CHUNK_EMBEDDINGS_KEY
from harvest_defs.defs.assets.claude import CLAUDE_PROVIDER, SUMMARIES_KEY
from harvest_defs.defs.assets.rag import PARTITIONS_TAG, RAG_INDEX_KEY
from harvest_defs.defs.assets.voyage import EMBEDDINGS_KEY
from harvest_defs.defs.batches import has_open_batches, poll_batches, poll_ended_batches
from harvest_defs.defs.corpus_sensor import build_corpus_sensor
from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource, VoyageResource
from harvest_defs.defs.retry_log import sdk_retry_warnings
from harvest_defs.defs.voyage_batches import (
    CHUNK_PROVIDER,
    RERANK_PROVIDER,
    VOYAGE_PROVIDER,
    voyage_poller,
)

MAX_CURSOR_IDS = 5000


def sensor_interval_seconds(default: int = 60) -> int:
    """``HARVEST_SENSOR_INTERVAL_SECONDS`` overrides the polling interval (tests use a few seconds)."""
    return int(os.environ.get("HARVEST_SENSOR_INTERVAL_SECONDS", default))


def _load_cursor(cursor: str | None) -> list[str]:
    return list(json.loads(cursor)) if cursor else []


def _batch_run_requests(
    context: dg.SensorEvaluationContext,
    provider: str,
    poll: Callable[[str], Any],
    ledger: Any,
    asset_selection: list[dg.AssetKey],
) -> Iterator[dg.RunRequest]:
    """Poll every in-flight batch (logging progress), then one RunRequest per newly ended batch."""
    requested = _load_cursor(context.cursor)
    seen = set(requested)
    for batch in poll_ended_batches(ledger, provider, poll, context.log):
        if batch.batch_id in seen:
            continue
        context.log.info(f"{provider} batch {batch.batch_id} ended: requesting collection")
        requested.append(batch.batch_id)
        seen.add(batch.batch_id)
        answers = batch.partition_key == RAG_ANSWERS_BATCHES  # a question-set batch, not a collection
        yield dg.RunRequest(
            run_key=f"collect-{provider}-{batch.batch_id}",
            partition_key=None if answers else batch.partition_key,
            asset_selection=[RAG_ANSWERS_KEY] if answers else asset_selection,
            tags={"harvest/batch_id": batch.batch_id, "harvest/provider": provider},
        )
    context.update_cursor(json.dumps(requested[-MAX_CURSOR_IDS:]))


def claude_collect_requests(
    context: dg.SensorEvaluationContext, ledger: Any, poll: Callable[[str], Any]
) -> tuple[list[dg.RunRequest], str, str]:
    """One collect run per partition whose open submissions' batches have all ended (or were lost).

    Returns the run requests, the new cursor, and why there are none (the tick's skip reason). The cursor
    holds the submission ids already requested, so a daemon restart never asks twice.
    """
    from harvest_defs.harvest.ledger import COLLECTED, ENDED, IN_PROGRESS, LOST

    requested = _load_cursor(context.cursor)
    for batch in ledger.in_flight(CLAUDE_PROVIDER, None):
        if batch.partition_key != RAG_ANSWERS_BATCHES:
            poll_batches(ledger, poll, [batch.batch_id], context.log)
    ready: dict[str, list[int]] = {}
    waiting = 0
    in_flight: set[str] = set()
    for submission in ledger.open_submissions(CLAUDE_PROVIDER):
        rows = [ledger.get(b) for b in submission.batch_ids]
        pending = [r.batch_id for r in rows if r is not None and r.status == IN_PROGRESS]
        if pending or any(r is not None and r.status not in (ENDED, COLLECTED, LOST) for r in rows):
            waiting += 1
            in_flight.update(b for b in pending if b)
            continue
        if str(submission.submission_id) not in requested:  # a list of a few thousand ids at most
            ready.setdefault(str(submission.partition_key), []).append(submission.submission_id)
    runs = []
    for partition, ids in sorted(ready.items()):
        context.log.info(f"partition {partition!r}: submission(s) {ids} ready, requesting collection")
        requested.extend(str(i) for i in ids)
        runs.append(
            dg.RunRequest(
                run_key=f"collect-{CLAUDE_PROVIDER}-{partition}-{max(ids)}",
                partition_key=partition,
                asset_selection=[SUMMARIES_KEY, EMBEDDINGS_KEY, CHUNK_EMBEDDINGS_KEY],
                tags={"harvest/provider": CLAUDE_PROVIDER, "harvest/submissions": ",".join(map(str, ids))},
            )
        )
    cursor = json.dumps(requested[-MAX_CURSOR_IDS:])
    reason = (
        f"{len(in_flight)} batch(es) in flight for {waiting} submission(s); nothing has ended yet"
        if waiting
        else "no open submissions: nothing submitted since the last collection"
    )
    return runs, cursor, reason


def build_sensors(interval_seconds: int) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name="claude_batch_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[SUMMARIES_KEY, EMBEDDINGS_KEY, CHUNK_EMBEDDINGS_KEY, RAG_ANSWERS_KEY],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Polls in-flight Claude Message Batches; collects + embeds a partition when one ends "
            "(or loads rag_answers when a question-set batch ends)."
        ),
    )
    def claude_batch_sensor(
        context: dg.SensorEvaluationContext, store: HarvestStoreResource, anthropic: AnthropicResource
    ) -> dg.SensorResult:
        ledger = store.ledger()
        idle = not ledger.open_submissions(CLAUDE_PROVIDER) and not has_open_batches(ledger, CLAUDE_PROVIDER)
        if idle:  # nothing to poll: no SDK import, no HTTP
            return dg.SensorResult(skip_reason="no open submissions and no Claude batch in flight")
        harvester = anthropic.harvester(store)
        with sdk_retry_warnings(context.log, anthropic.resolved_base_url()):
            runs, cursor, reason = claude_collect_requests(context, ledger, harvester.poll)
        answers = [
            b.batch_id
            for b in [
                *ledger.in_flight(CLAUDE_PROVIDER, RAG_ANSWERS_BATCHES),
                *ledger.ended_uncollected(CLAUDE_PROVIDER, RAG_ANSWERS_BATCHES),
            ]
            if b.batch_id
        ]
        if answers:
            for batch in poll_ended_batches(
                ledger, CLAUDE_PROVIDER, harvester.poll, context.log, RAG_ANSWERS_BATCHES
            ):
                runs.append(
                    dg.RunRequest(
                        run_key=f"collect-{CLAUDE_PROVIDER}-{batch.batch_id}",
                        asset_selection=[RAG_ANSWERS_KEY],
                        tags={"harvest/batch_id": batch.batch_id, "harvest/provider": CLAUDE_PROVIDER},
                    )
                )
        return dg.SensorResult(run_requests=runs, cursor=cursor, skip_reason=None if runs else reason)

    @dg.sensor(
        name="voyage_batch_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[EMBEDDINGS_KEY, CHUNK_EMBEDDINGS_KEY, RAG_ANSWERS_KEY],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Polls in-flight Voyage Batch API jobs; collects a partition's summary or passage embeddings "
            "when one ends (or brings rag_answers back when a question set's rerank batch ends)."
        ),
    )
    def voyage_batch_sensor(
        context: dg.SensorEvaluationContext, store: HarvestStoreResource, voyage: VoyageResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        ledger = store.ledger()
        # Each asset's batches live in its own ledger namespace and go back to that asset only. The cursor
        # (batch ids already requested) is shared: batch ids are unique across namespaces.
        routes = {
            VOYAGE_PROVIDER: EMBEDDINGS_KEY,
            CHUNK_PROVIDER: CHUNK_EMBEDDINGS_KEY,
            RERANK_PROVIDER: RAG_ANSWERS_KEY,  # a question set's rerank batch (partition: none)
        }
        open_routes = [p for p in routes if has_open_batches(ledger, p)]
        if not open_routes:
            yield dg.SkipReason(
                "no Voyage Batch API job in flight (partitions under the threshold embed in real time)"
            )
            return
        for provider in open_routes:
            yield from _batch_run_requests(
                context, provider, voyage_poller(voyage, store, provider), ledger, [routes[provider]]
            )

    @dg.sensor(
        name="rag_index_sensor",
        minimum_interval_seconds=interval_seconds,
        asset_selection=[RAG_INDEX_KEY],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Updates the RAG index once per tick, covering every summary_embeddings partition that landed "
            "since the last index run (waits while embedding runs are still going)."
        ),
    )
    def rag_index_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return rag_index_request(context)

    return [build_corpus_sensor(interval_seconds), claude_batch_sensor, voyage_batch_sensor, rag_index_sensor]


# The assets whose rows the index holds: summary embeddings and document passages.
_INDEXED_KEYS = (EMBEDDINGS_KEY, CHUNK_EMBEDDINGS_KEY)

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


# A run "active" for longer than this is not waited for (a killed process can leave a run STARTED for
# good, and the index must not wait on it forever); a later embedding still gets its own index run.
MAX_WAIT_SECONDS = 30 * 60


def _embedding_runs_active(instance: dg.DagsterInstance) -> int:
    """Runs queued or running that will write summary_embeddings (one index run should follow them all)."""
    import time

    since = datetime.fromtimestamp(time.time() - MAX_WAIT_SECONDS, tz=UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=_ACTIVE, created_after=since), limit=200
    )
    return sum(
        1
        for record in records
        if record.dagster_run.asset_selection
        and any(key in record.dagster_run.asset_selection for key in _INDEXED_KEYS)
    )


def rag_index_request(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """ONE rag_index run for every summary_embeddings partition landed since the cursor (a storage id).

    The run's ``harvest/partitions`` tag names them, so the index's materialization says what it covered.
    While embedding runs are still queued or running the tick waits: the three partitions of a backfill
    then make one index run, not three (the last of which used to read "rows_added 0").
    """
    after = int(context.cursor) if context.cursor else None
    records = [
        record
        for key in _INDEXED_KEYS  # passages land in the same collect run as the summary embeddings
        for record in context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000
        ).records
    ]
    if not records:
        if after is None:
            return dg.SkipReason("summary_embeddings has never been materialized")
        return dg.SkipReason("index is up to date with the latest embeddings")
    latest = max(r.storage_id for r in records)
    index = context.instance.fetch_materializations(RAG_INDEX_KEY, limit=1, ascending=False).records
    if index and index[0].storage_id > latest:
        return dg.SensorResult(
            skip_reason="the index was rebuilt after the latest embeddings", cursor=str(latest)
        )
    active = _embedding_runs_active(context.instance)
    partitions = sorted({str(r.partition_key) for r in records if r.partition_key is not None})
    if active:
        return dg.SkipReason(
            f"{len(partitions)} partition(s) embedded since the last index run ({', '.join(partitions)}); "
            f"waiting for {active} summary_embeddings run(s) to finish so one index run covers them all"
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"rag-index-{latest}",
                asset_selection=[RAG_INDEX_KEY],
                tags={PARTITIONS_TAG: ",".join(partitions)[:4000]},
            )
        ],
        cursor=str(latest),
    )
