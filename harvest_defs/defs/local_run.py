"""Drive the asset chain in-process, the way the daemon would: for the offline demo and the tests.

``materialize_selection`` runs a set of assets (and their checks) for one partition on a given instance;
``tick_sensor`` evaluates a sensor once and returns its run requests and new cursor; ``run_requests``
executes what a sensor asked for. Nothing here is needed by ``dagster dev`` — the daemon does the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
