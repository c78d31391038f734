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
    assert tick.run_requests[0].tags["harvest/partitions"] == "alpha,beta"  # one run covers both
    assert tick_sensor(defs, instance, "rag_index_sensor", tick.cursor).run_requests == []

    _report(instance, "summary_embeddings", "gamma")
    _report(instance, "rag_index")  # someone rebuilt the index after it already: nothing to do
    assert tick_sensor(defs, instance, "rag_index_sensor", tick.cursor).run_requests == []


def test_rag_index_sensor_waits_for_running_embeddings(corpus: Path, instance: dg.DagsterInstance) -> None:
    """A partition embedded while another's embedding run is still going: wait, then ONE run for both."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    defs = build_defs(corpus)
    _report(instance, "summary_embeddings", "alpha")
    running = DagsterRun(
        job_name="__ASSET_JOB",
        run_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
        status=DagsterRunStatus.STARTED,
        asset_selection=frozenset({dg.AssetKey("summary_embeddings")}),
    )
    instance.add_run(running)
    waiting = tick_sensor(defs, instance, "rag_index_sensor", None)
    assert waiting.run_requests == []
    assert "waiting for 1 summary_embeddings run" in str(waiting.skip_reason), waiting.skip_reason

    _report(instance, "summary_embeddings", "beta")
    instance.report_run_canceled(running)  # the embedding run ends
    tick = tick_sensor(defs, instance, "rag_index_sensor", waiting.cursor)
    assert len(tick.run_requests) == 1
    assert tick.run_requests[0].tags["harvest/partitions"] == "alpha,beta"
