"""Voyage Batch API: lifecycle, resume after SIGKILL, and the blocking dlt mode into native FLOAT[dim]."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pipeline import create_duckdb_pipeline
from harvest_defs.harvest.voyage import VoyageBatchHarvester, voyage_embeddings_batch
from harvest_defs_tests.harvest.voyage_kill_submit import texts

KEY = "pa-test-key"


def _harvester(emulator: EmulatorServer, home: Path, **kwargs: Any) -> VoyageBatchHarvester:
    return VoyageBatchHarvester(
        api_key=KEY,
        base_url=emulator.voyage_base_url,
        ledger_path=home / "ledger.sqlite",
        raw_dir=home / "raw",
        poll_interval=0.05,
        **kwargs,
    )


def _collect_all(harvester: VoyageBatchHarvester, batch_ids: list[str]) -> pa.Table:
    harvester.wait(batch_ids)
    tables = [t for b in batch_ids for t in harvester.collect(b)]
    return pa.concat_tables(tables)


def test_submit_poll_collect_and_resubmit_costs_nothing(tmp_path: Path, emulator: EmulatorServer) -> None:
    harvester = _harvester(emulator, tmp_path, output_dimension=512)
    inputs = texts(40)
    report = harvester.submit(inputs, partition_key="p1")
    assert (report.requests_sent, report.requests_cached, len(report.batch_ids)) == (40, 0, 1)
    assert report.estimated_cost_usd >= 0
    progress = harvester.poll(report.batch_ids[0])
    assert progress.ended and progress.request_counts["completed"] == 40
    table = _collect_all(harvester, report.batch_ids)
    assert sorted(table.column("embedding_id").to_pylist()) == sorted(t["id"] for t in inputs)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 512)
    ids, counts = table.column("embedding_id").to_pylist(), table.column("total_tokens").to_pylist()
    tokens = dict(zip(ids, counts, strict=True))
    assert all(tokens[t["id"]] == math.ceil(len(t["text"]) / 4) for t in inputs)  # exact per text
    assert (tmp_path / "raw" / "voyage" / f"{report.batch_ids[0]}.jsonl").exists()  # raw results first
    harvester.mark_collected(report.batch_ids[0])
    again = harvester.submit(inputs, partition_key="p1")
    assert (again.requests_sent, again.requests_cached, again.new_batch_ids) == (0, 40, [])
    assert emulator.stats()["voyage_batches_created"] == 1


@pytest.mark.parametrize("kill_after", ["upload", "create"])
def test_sigkill_after_upload_or_create_then_restart_makes_exactly_one_batch(
    tmp_path: Path, emulator: EmulatorServer, kill_after: str
) -> None:
    n = 30
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harvest_defs_tests.harvest.voyage_kill_submit",
            emulator.voyage_base_url,
            str(tmp_path),
            str(n),
            kill_after,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    created_by_killed = 1 if kill_after == "create" else 0
    assert emulator.stats().get("voyage_batches_created", 0) == created_by_killed
    harvester = _harvester(emulator, tmp_path)
    report = harvester.submit(texts(n))  # the restart
    assert len(report.batch_ids) == 1
    assert emulator.stats()["voyage_batches_created"] == 1
    table = _collect_all(harvester, report.batch_ids)
    ids = table.column("embedding_id").to_pylist()
    assert len(ids) == len(set(ids)) == n  # every vector exactly once


def test_blocking_batch_mode_loads_native_vectors(tmp_path: Path, emulator: EmulatorServer) -> None:
    pipeline = create_duckdb_pipeline(
        "voyage_batch_test", "harvest", str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "dlt")
    )
    inputs = texts(25)
    kwargs: dict[str, Any] = {
        "api_key": KEY,
        "base_url": emulator.voyage_base_url,
        "mode": "auto",
        "batch_threshold": 10,
        "poll_interval": 0.05,
        "ledger_path": tmp_path / "ledger.sqlite",
        "raw_dir": tmp_path / "raw",
    }
    pipeline.run(voyage_embeddings_batch(inputs, **kwargs))
    pipeline.run(voyage_embeddings_batch(inputs, **kwargs))  # cached in the destination: nothing sent
    assert emulator.stats()["voyage_batches_created"] == 1
    assert emulator.stats().get("voyage_embed_calls", 0) == 0
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        [(rows, typ)] = con.execute(
            "SELECT count(*), any_value(typeof(embedding)) FROM harvest.voyage_embeddings"
        ).fetchall()
    finally:
        con.close()
    assert (rows, typ) == (25, "FLOAT[1024]")
