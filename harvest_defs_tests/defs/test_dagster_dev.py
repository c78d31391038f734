"""The user's path: ``dagster dev``, click Materialize (GraphQL), the daemon's sensors do the rest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY
from harvest_defs_tests.defs.dagster_dev import dagster_dev

# The chain needs the harvesters and the RAG index (landing in parallel); until then these tests skip.
for _module in ("harvest_defs.harvest.claude", "harvest_defs.harvest.voyage", "harvest_defs.rag.index"):
    pytest.importorskip(_module, reason=f"{_module} has not landed yet")

CHAIN = ["documents", "claude_summary_batches", "claude_summaries", "summary_embeddings", "rag_index"]


@pytest.mark.dagster_dev
@pytest.mark.timeout(360)
def test_dagster_dev_sensor_drives_the_chain(tmp_path: Path, corpus: Path, emulator: EmulatorServer) -> None:
    env = {
        "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": emulator.anthropic_base_url,
        "VOYAGE_API_KEY": TEST_VOYAGE_KEY,
        "VOYAGE_BASE_URL": emulator.voyage_base_url,
        "HARVEST_HOME": str(tmp_path / "harvest_home"),
        "HARVEST_CORPUS": str(corpus),
        "HARVEST_SENSOR_INTERVAL_SECONDS": "2",
    }
    with dagster_dev(tmp_path, env) as dev:
        dev.launch_assets(["documents", "claude_summary_batches"], partition="alpha")
        deadline = time.monotonic() + 240  # generous: 2 shared cores, three run processes
        while time.monotonic() < deadline:
            if all(dev.materialized_partitions(key) for key in CHAIN):
                break
            failed = [r for r in dev.runs() if r["status"] in ("FAILURE", "CANCELED")]
            assert not failed, f"runs failed: {failed}\n{dev.log_tail()}"
            time.sleep(1.0)
        else:
            pytest.fail(
                f"not every asset materialized: {[(k, dev.materialized_partitions(k)) for k in CHAIN]}"
                f"\n{dev.log_tail()}"
            )
        for key in CHAIN[:-1]:
            assert dev.materialized_partitions(key) == ["alpha"], key
        assert dev.materialized_partitions("rag_index") == [None]
        runs = dev.runs()
        sensor_runs = [r for r in runs if any(t["key"] == "dagster/sensor_name" for t in r["tags"])]
        assert len(sensor_runs) == 2, runs  # one collect run (claude_batch_sensor), one index run
        assert all(r["status"] == "SUCCESS" for r in runs), runs
    stats = emulator.stats()
    assert stats.get("anthropic_batches_created") == 1, stats
