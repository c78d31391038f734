"""rag_index_sensor: one index run per new summary_embeddings materialization, none when up to date."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import tick_sensor


def _report(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def test_rag_index_sensor_follows_embeddings(corpus: Path, instance: dg.DagsterInstance) -> None:
    defs = build_defs(corpus)
    first = tick_sensor(defs, instance, "rag_index_sensor", None)
    assert first.run_requests == [] and first.skip_reason

    _report(instance, "summary_embeddings", "alpha")
    _report(instance, "summary_embeddings", "beta")  # two partitions landed between ticks: one index run
    tick = tick_sensor(defs, instance, "rag_index_sensor", first.cursor)
    assert [r.asset_selection for r in tick.run_requests] == [[dg.AssetKey("rag_index")]]
    assert tick_sensor(defs, instance, "rag_index_sensor", tick.cursor).run_requests == []

    _report(instance, "summary_embeddings", "gamma")
    _report(instance, "rag_index")  # someone rebuilt the index after it already: nothing to do
    assert tick_sensor(defs, instance, "rag_index_sensor", tick.cursor).run_requests == []
