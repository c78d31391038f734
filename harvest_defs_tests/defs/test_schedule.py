"""The new-documents schedule requests only collections whose files changed since their last snapshot."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def("new_documents_schedule")
    context = dg.build_schedule_context(
        instance=instance,
        resources={"store": (defs.resources or {})["store"]},
        repository_def=defs.get_repository_def(),
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def test_schedule_requests_only_changed_collections(
    corpus: Path, harvest_home: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(corpus)
    first = _tick(defs, instance)
    assert sorted(r.partition_key or "" for r in first) == ["alpha", "beta", "gamma"]
    assert all(
        set(r.asset_selection or []) == {dg.AssetKey("documents"), dg.AssetKey("claude_summary_batches")}
        for r in first
    )

    # A backfill over the whole range is one run (single-run policy) that snapshots every collection.
    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.assets("documents"),
        instance=instance,
        resources=dict(defs.resources or {}),
        tags={"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "gamma"},
    )
    assert result.success
    assert _tick(defs, instance) == []
    snapshot = pq.read_table(harvest_home / "documents" / "beta.parquet").to_pylist()
    assert sorted(r["document_id"] for r in snapshot) == ["python", "rust"]

    (corpus / "beta" / "go.md").write_text("# Go\n\nGo has goroutines and channels.\n", encoding="utf-8")
    changed = _tick(defs, instance)
    assert [r.partition_key for r in changed] == ["beta"]
    materialize_selection(defs, instance, ["documents"], "beta")
    assert _tick(defs, instance) == []
