"""The newcomer's path in a real browser: Catalog → materialize → the sensors build the index (issue 13).

``dagster dev`` (webserver + daemon, temp DAGSTER_HOME / HARVEST_HOME) runs over the packaged sample
corpus against the emulator. In Chromium we tick ``documents`` + ``claude_summary_batches`` in the Catalog
and launch a backfill of every partition; the daemon's sensors collect, embed and index. Then the asset
pages must show, per partition, a ``billed_usd`` equal to that partition's DuckDB rows' tokens × price,
and ``embedding`` as ``FLOAT[1024]`` in the Columns table.

``HARVEST_CORPUS_AUTO_SUBMIT=0`` keeps ``corpus_sensor`` to adding the partitions, so the harvest is the
one launched from the browser (and the test stays short).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from harvest_defs.defs.metadata import usd
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pricing import billed_batch_usd
from harvest_defs_tests.browser import ui
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY
from harvest_defs_tests.defs.dagster_dev import DagsterDev, dagster_dev

SAMPLE = Path(__file__).resolve().parents[2] / "harvest_defs" / "sample_corpus" / "documents"
PARTITIONS = ["engineering", "handbook", "product"]
PARTITION_KEYS = """
query Keys { assetNodeOrError(assetKey: {path: ["documents"]}) { ... on AssetNode { partitionKeys } } }
"""
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _wait(what: str, dev: DagsterDev, ready: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = [r for r in dev.runs() if r["status"] in ("FAILURE", "CANCELED")]
        assert not failed, f"runs failed: {failed}\n{dev.log_tail()}"
        if ready():  # type: ignore[operator]
            return
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}\n{dev.log_tail()}")


def _billed_by_partition(warehouse: Path) -> dict[str, float]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT partition_key, model, sum(input_tokens), sum(output_tokens), "
            "sum(coalesce(cache_creation_input_tokens, 0)), sum(coalesce(cache_read_input_tokens, 0)) "
            "FROM harvest.claude_messages GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    billed: dict[str, float] = {}
    for partition, model, i, o, cw, cr in rows:
        billed[partition] = billed.get(partition, 0.0) + billed_batch_usd(model, i, o, cw, cr)
    return billed


@pytest.mark.browser
@pytest.mark.timeout(540)
def test_catalog_materialize_then_sensors_index_and_metadata_is_true(
    tmp_path: Path, chromium: Path, screenshots: Path, emulator: EmulatorServer
) -> None:
    from playwright.sync_api import sync_playwright

    home = tmp_path / "harvest_home"
    env = {
        "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": emulator.anthropic_base_url,
        "VOYAGE_API_KEY": TEST_VOYAGE_KEY,
        "VOYAGE_BASE_URL": emulator.voyage_base_url,
        "HARVEST_HOME": str(home),
        "HARVEST_CORPUS": str(SAMPLE),
        "HARVEST_SENSOR_INTERVAL_SECONDS": "2",
        "HARVEST_CORPUS_AUTO_SUBMIT": "0",
    }
    with dagster_dev(tmp_path, env) as dev, sync_playwright() as playwright:
        _wait(
            "corpus_sensor to add the partitions",
            dev,
            lambda: (
                sorted((dev.graphql(PARTITION_KEYS)["assetNodeOrError"] or {}).get("partitionKeys") or [])
                == PARTITIONS
            ),
            60,
        )
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            ui.open_catalog(page, dev.url, screenshots)
            ui.materialize_all_partitions(
                page, ["documents", "claude_summary_batches"], screenshots, len(PARTITIONS)
            )

            def indexed() -> bool:
                busy = [r for r in dev.runs() if r["status"] in ACTIVE]
                return bool(dev.materialized_partitions("rag_index")) and not busy

            _wait("the sensors to collect, embed and index", dev, indexed, 360)
            index_runs = [r for r in dev.runs() if any(t["value"] == "rag_index_sensor" for t in r["tags"])]
            assert len(index_runs) == 1, index_runs  # one index run for the three partitions

            billed = _billed_by_partition(home / "warehouse.duckdb")
            assert sorted(billed) == PARTITIONS
            for partition in PARTITIONS:
                shown = ui.partition_metadata(
                    page, dev.url, "claude_summaries", partition, "billed_usd", screenshots
                )
                assert float(shown) == usd(billed[partition]).value > 0, (partition, shown, billed)
                estimate = ui.partition_metadata(
                    page, dev.url, "claude_summary_batches", partition, "est_max_usd", screenshots
                )
                assert float(estimate) >= float(shown)
            kind = ui.column_type(page, dev.url, "summary_embeddings", "embedding", screenshots)
            assert kind == "FLOAT[1024]", kind
        finally:
            browser.close()
    print(f"screenshots: {screenshots} ({len(list(screenshots.iterdir()))} files)")
