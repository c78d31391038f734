"""Drive the asset chain in-process, the way the daemon would: for the offline demo and the tests.

``materialize_selection`` runs a set of assets (and their checks) for one partition on a given instance;
``tick_sensor`` evaluates a sensor once and returns its run requests and new cursor; ``run_requests``
executes what a sensor asked for. Nothing here is needed by ``dagster dev`` — the daemon does the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.sensor_definition import SensorEvaluationContext
from dagster._core.instance.types import CachingDynamicPartitionsLoader


@dataclass
class SensorTick:
    run_requests: list[dg.RunRequest]
    cursor: str | None
    skip_reason: str | None = None
    logs: list[str] = field(default_factory=list)


class _EphemeralSensorContext(SensorEvaluationContext):
    """A sensor context over an ephemeral instance that can still resolve dynamic partitions.

    Dagster resolves a tick's partitioned run requests against the instance's dynamic partitions plus the
    tick's own add/delete requests, but only when the context has an ``instance_ref`` — which an ephemeral
    instance (tests, the demo) lacks. The daemon always has one; this gives ours the same loader.
    """

    @property
    def caching_dynamic_partitions_loader(self) -> CachingDynamicPartitionsLoader:
        return CachingDynamicPartitionsLoader(self.instance)


def _all_assets(defs: dg.Definitions) -> list[Any]:
    return [*(defs.assets or []), *(defs.asset_checks or [])]


def materialize_selection(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: Iterable[dg.AssetKey | str],
    partition_key: str | None = None,
    *,
    tags: dict[str, str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ``keys`` (their checks run too) for one partition, with the definitions' resources."""
    selection = dg.AssetSelection.assets(*[dg.AssetKey.from_coercible(k) for k in keys])
    return dg.materialize(
        _all_assets(defs),
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        resources=dict(defs.resources or {}),
        tags=tags,
        raise_on_error=raise_on_error,
    )


def tick_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None
) -> SensorTick:
    """Evaluate one sensor tick like the daemon does (same resources, same cursor semantics)."""
    sensor = defs.resolve_sensor_def(name)
    resources = {k: v for k, v in (defs.resources or {}).items() if k in sensor.required_resource_keys}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    if context.instance_ref is None:
        context.__class__ = _EphemeralSensorContext
    data = sensor.evaluate_tick(context)
    apply_partition_requests(instance, data.dynamic_partitions_requests or [])
    return SensorTick(
        run_requests=list(data.run_requests or []),
        cursor=data.cursor,
        skip_reason=data.skip_message,
    )


def register_collections(instance: dg.DagsterInstance, corpus: Path) -> list[str]:
    """Add the corpus's collections as partitions (what ``corpus_sensor``'s first tick does)."""
    from harvest_defs.defs.partitions import COLLECTIONS_NAME
    from harvest_defs.harvest.corpus import discover_collections

    names, _ = discover_collections(corpus)
    instance.add_dynamic_partitions(COLLECTIONS_NAME, names)
    return names


def apply_partition_requests(instance: dg.DagsterInstance, requests: Sequence[Any]) -> None:
    """Add/delete dynamic partitions as the daemon does before it launches a tick's runs."""
    for request in requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        elif isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def run_requests(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    requests: Sequence[dg.RunRequest],
    *,
    raise_on_error: bool = True,
) -> list[dg.ExecuteInProcessResult]:
    """Execute what a sensor asked for, as the daemon would launch it (run key kept as a tag)."""
    results = []
    for request in requests:
        keys = list(request.asset_selection or [])
        tags = dict(request.tags or {})
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        results.append(
            materialize_selection(
                defs, instance, keys, request.partition_key, tags=tags, raise_on_error=raise_on_error
            )
        )
    return results


class ChainStepFailed(RuntimeError):
    """A run of the chain failed; the message holds the failed steps' own errors (file, partition)."""


def check_result(result: dg.ExecuteInProcessResult, what: str) -> None:
    if result.success:
        return
    messages = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    raise ChainStepFailed(f"{what} failed: " + ("; ".join(messages) or "see the run log"))


@dataclass
class ChainRun:
    """What one pass of the sensors did: the runs each launched, in order."""

    submit_runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    collect_runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    index_runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)


def run_chain(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    timeout: float = 300.0,
    on_step: Callable[[str, int, int], None] | None = None,
    cursors: dict[str, str | None] | None = None,
) -> ChainRun:
    """The daemon's work until the chain is at rest: corpus_sensor -> submit runs -> claude_batch_sensor
    (until no submission is open) -> collect runs -> voyage_batch_sensor (until no Voyage batch is open)
    -> rag_index_sensor -> the index run.

    Raises :class:`ChainStepFailed` on the first failed run and when batches do not end within
    ``timeout``: a caller never waits on a chain that cannot finish. ``cursors`` carries the sensors'
    cursors across calls, as the daemon keeps them across ticks.
    """
    import time

    from harvest_defs.defs.voyage_batches import VOYAGE_PROVIDERS

    cursors = cursors if cursors is not None else {}
    step = on_step or (lambda name, done, total: None)
    store = (defs.resources or {})["store"]
    ledger = store.ledger()
    out = ChainRun()
    tick = tick_sensor(defs, instance, "corpus_sensor", cursors.get("corpus_sensor"))
    cursors["corpus_sensor"] = tick.cursor
    for n, request in enumerate(tick.run_requests, start=1):
        for result in run_requests(defs, instance, [request], raise_on_error=False):
            check_result(result, f"documents + claude_summary_batches [{request.partition_key}]")
            out.submit_runs.append(result)
        step("submit", n, len(tick.run_requests))
    total = len(ledger.open_submissions("claude"))
    deadline = time.monotonic() + timeout
    while open_now := len(ledger.open_submissions("claude")):
        step("collect", total - open_now, total)
        if time.monotonic() > deadline:
            raise ChainStepFailed(f"Message Batches did not end within {timeout:.0f} s")
        tick = tick_sensor(defs, instance, "claude_batch_sensor", cursors.get("claude_batch_sensor"))
        cursors["claude_batch_sensor"] = tick.cursor
        for result in run_requests(defs, instance, tick.run_requests, raise_on_error=False):
            partition = result.dagster_run.tags.get("dagster/partition")
            check_result(result, f"claude_summaries + summary_embeddings [{partition}]")
            out.collect_runs.append(result)
        if not tick.run_requests:
            time.sleep(0.2)
    step("collect", total, total)
    # Partitions at or above VoyageResource.batch_threshold embed through the Voyage Batch API: wait for
    # voyage_batch_sensor to collect them, as the daemon would.
    while any(ledger.in_flight(p) or ledger.ended_uncollected(p) for p in VOYAGE_PROVIDERS):
        if time.monotonic() > deadline:
            raise ChainStepFailed(f"Voyage batches did not end within {timeout:.0f} s")
        tick = tick_sensor(defs, instance, "voyage_batch_sensor", cursors.get("voyage_batch_sensor"))
        cursors["voyage_batch_sensor"] = tick.cursor
        for result in run_requests(defs, instance, tick.run_requests, raise_on_error=False):
            partition = result.dagster_run.tags.get("dagster/partition")
            check_result(result, f"summary/chunk embeddings [{partition}]")
            out.collect_runs.append(result)
        if not tick.run_requests:
            time.sleep(0.2)
    tick = tick_sensor(defs, instance, "rag_index_sensor", cursors.get("rag_index_sensor"))
    cursors["rag_index_sensor"] = tick.cursor
    for result in run_requests(defs, instance, tick.run_requests, raise_on_error=False):
        check_result(result, "rag_index")
        out.index_runs.append(result)
    step("index", 1, 1)
    return out
