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
@pytest.mark.timeout(600)
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
        # corpus_sensor adds the three collections as partitions and submits each; the other sensors
        # collect, embed and index — the user only starts `dagster dev`.
        deadline = time.monotonic() + 480  # runs serialize on the DuckDB pool, ~25 s each under load
        wanted = ["alpha", "beta", "gamma"]
        while time.monotonic() < deadline:
            done = all(sorted(set(dev.materialized_partitions(k))) == wanted for k in CHAIN[:-1])
            busy = [r for r in dev.runs() if r["status"] not in ("SUCCESS", "FAILURE", "CANCELED")]
            if done and dev.materialized_partitions("rag_index") and _indexed(tmp_path) == 6 and not busy:
                break
            failed = [r for r in dev.runs() if r["status"] in ("FAILURE", "CANCELED")]
            assert not failed, f"runs failed: {failed}\n{dev.log_tail()}"
            time.sleep(1.0)
        else:
            pytest.fail(
                f"not every asset materialized: {[(k, dev.materialized_partitions(k)) for k in CHAIN]}"
                f"\n{dev.log_tail()}"
            )
        runs = dev.runs()
        sensors = [t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/sensor_name"]
        assert sensors.count("corpus_sensor") == 3 and sensors.count("claude_batch_sensor") == 3, sensors
        assert all(r["status"] == "SUCCESS" for r in runs), runs
        # Clicking Materialize on an unchanged partition costs nothing: the submit sends no request.
        dev.launch_assets(["documents", "claude_summary_batches"], partition="alpha")
        time.sleep(5)
    stats = emulator.stats()
    assert stats.get("anthropic_batches_created") == 3, stats
    assert stats.get("anthropic_batch_requests") == 6, stats


def _indexed(tmp_path: Path) -> int:
    """Documents in the index (its rows are each document's summary plus its passages)."""
    from harvest_defs.rag.index import open_index
    from harvest_defs.rag.schema import CHUNKS_TABLE

    path = tmp_path / "harvest_home" / "rag.duckdb"
    if not path.is_file():
        return 0
    try:
        con = open_index(path)
        try:
            row = con.execute(f"SELECT count(DISTINCT document_id) FROM {CHUNKS_TABLE}").fetchone()
        finally:
            con.close()
    except Exception:  # mid-swap or not built yet
        return 0
    return int(row[0]) if row else 0
