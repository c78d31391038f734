"""The numbers the Dagster UI shows are true per partition (issue 13), on the packaged sample corpus.

A backfill of ``claude_summary_batches`` over every partition is one run; each partition's
materialization must show only its own requests and estimate. The estimate's input side is within ±25%
of what the results were billed; ``billed_usd`` equals the DuckDB rows' tokens × price; a collect run that
finds nothing new keeps showing the partition's real figures; the Columns table has the real DuckDB
types (``FLOAT[1024]``) and a description for every column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection, register_collections, run_requests, tick_sensor
from harvest_defs.defs.metadata import usd
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pricing import billed_batch_usd

SAMPLE = Path(__file__).resolve().parents[2] / "harvest_defs" / "sample_corpus" / "documents"
PARTITIONS = ["engineering", "handbook", "product"]


def _by_partition(result: dg.ExecuteInProcessResult, key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key == dg.AssetKey(key):
            out[str(mat.partition)] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _rows_billed(warehouse: Path) -> dict[str, dict[str, float]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT partition_key, model, sum(input_tokens), sum(output_tokens), "
            "sum(coalesce(cache_creation_input_tokens, 0)), sum(coalesce(cache_read_input_tokens, 0)) "
            "FROM harvest.claude_messages GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, float]] = {}
    for partition, model, i, o, cw, cr in rows:
        entry = out.setdefault(partition, {"usd": 0.0, "input": 0})
        entry["usd"] += billed_batch_usd(model, int(i), int(o), int(cw), int(cr))
        entry["input"] += int(i) + int(cw) + int(cr)
    return out


@pytest.fixture
def sample_instance(tmp_path: Path) -> Any:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as temp:
        assert register_collections(temp, SAMPLE) == PARTITIONS
        yield temp


def test_per_partition_figures_estimate_and_billed(
    sample_instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    defs = build_defs(SAMPLE, sensor_interval=1)
    backfill = {
        "dagster/asset_partition_range_start": PARTITIONS[0],
        "dagster/asset_partition_range_end": PARTITIONS[-1],
    }
    materialize_selection(defs, sample_instance, ["documents"], PARTITIONS[0])
    for partition in PARTITIONS[1:]:
        materialize_selection(defs, sample_instance, ["documents"], partition)
    submitted = materialize_selection(defs, sample_instance, ["claude_summary_batches"], tags=backfill)
    submit = _by_partition(submitted, "claude_summary_batches")
    assert sorted(submit) == PARTITIONS
    sent = api_env.stats()["anthropic_batch_requests"]
    # Each partition shows its own share: the partitions add up to the run, not to 3× it.
    assert sum(m["requests_sent"] for m in submit.values()) == sent
    assert len({m["requests_sent"] for m in submit.values()}) > 1 or len(PARTITIONS) == 1
    assert all(len(m["batch_ids"]) == 1 for m in submit.values())
    assert len({m["batch_ids"][0] for m in submit.values()}) == len(PARTITIONS)
    assert "est_usd" not in next(iter(submit.values()))

    tick = tick_sensor(defs, sample_instance, "claude_batch_sensor", None)
    collected = {}
    for result in run_requests(defs, sample_instance, tick.run_requests):
        collected.update(_by_partition(result, "claude_summaries"))
    assert sorted(collected) == PARTITIONS
    truth = _rows_billed(harvest_home / "warehouse.duckdb")
    for partition in PARTITIONS:
        billed, estimate = collected[partition], submit[partition]
        assert billed["billed_usd"] == usd(truth[partition]["usd"]).value
        # The input side of the estimate is what the emulator bills (same tokenizer): within ±25%.
        assert estimate["est_input_tokens"] == pytest.approx(truth[partition]["input"], rel=0.25)
        assert estimate["est_max_usd"] >= billed["billed_usd"] > 0  # an upper bound, named so
        print(
            f"{partition}: est_input_tokens {estimate['est_input_tokens']} vs billed input "
            f"{truth[partition]['input']}; est_max_usd {estimate['est_max_usd']} vs billed_usd "
            f"{billed['billed_usd']}"
        )
        assert "upper bound" in estimate["cost_note"] and "billed" in billed["cost_note"]

    # A collect run that finds nothing new (what *Materialize all* launches right after a submit) keeps
    # showing the partition's real figures instead of hiding them behind zeros.
    again = materialize_selection(defs, sample_instance, ["claude_summaries"], PARTITIONS[0])
    noop = _by_partition(again, "claude_summaries")[PARTITIONS[0]]
    assert noop["rows_written"] == 0
    for field in ("billed_usd", "requests_succeeded", "input_tokens", "output_tokens"):
        assert noop[field] == collected[PARTITIONS[0]][field] and noop[field] > 0

    # Columns: real DuckDB types, every column described, ours ahead of dlt's own metadata.
    embeddings = materialize_selection(defs, sample_instance, ["summary_embeddings"], PARTITIONS[0])
    meta = next(
        e.materialization.metadata
        for e in embeddings.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey("summary_embeddings")
    )
    # Nothing new to embed: the partition's standing figures, not zeros.
    assert meta["embeddings_written"].value == 0
    assert meta["embeddings_in_partition"].value == collected[PARTITIONS[0]]["rows"] > 0
    assert meta["tokens_in_partition"].value > 0
    schema = meta["dagster/column_schema"].value
    types = {c.name: c.type for c in schema.columns}
    assert types["embedding"] == "FLOAT[1024]", types
    assert all(c.description and "undocumented" not in c.description for c in schema.columns), schema
    keys = list(meta)
    assert keys.index("texts_in_partition") < keys.index("jobs") if "jobs" in keys else True
    summary_schema = next(
        e.materialization.metadata["dagster/column_schema"].value
        for e in again.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey("claude_summaries")
    )
    assert all(c.description and "undocumented" not in c.description for c in summary_schema.columns)
    assert {c.name for c in summary_schema.columns} >= {"custom_id", "input_tokens", "partition_key"}
