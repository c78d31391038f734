"""The whole chain with no shared local disk: submit, sensor, collect/embed/index and ``harvest ask`` in
four processes, each with its own fresh ``HARVEST_HOME``; only Postgres, S3 (moto) and the APIs are shared.
The same steps on the DuckDB backend (one home, one machine) must give the same index and the same answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import BackendSettings

HARVEST = shutil.which("harvest") or str(Path(sys.executable).with_name("harvest"))
QUESTION = "How fast must the on-call engineer acknowledge a page?"


def _step(step: str, home: Path, env: dict[str, str]) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "harvest_defs_tests.backends.chain_step", step, str(home)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**env, "HARVEST_HOME": str(home)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _ask(home: Path, env: dict[str, str], mode: str) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [HARVEST, "ask", QUESTION, "--json", "--mode", mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HARVEST_HOME": str(home)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return dict(json.loads(done.stdout))


def _chain(homes: list[Path], env: dict[str, str]) -> dict[str, Any]:
    submitted = _step("submit", homes[0], env)
    sensed = _step("sensor", homes[1], env)
    collected = _step("collect", homes[2], env)
    asks = {mode: _ask(homes[3], env, mode) for mode in ("vector", "hybrid")}
    return {"submit": submitted, "sensor": sensed, "collect": collected, "ask": asks}


@pytest.mark.timeout(900)
def test_four_processes_four_homes_match_the_duckdb_backend(
    api_env: EmulatorServer, pg_env: BackendSettings, s3_env: str, tmp_path: Path
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARVEST_")}
    duck = _chain([tmp_path / "one-machine"] * 4, {**base, "HARVEST_BACKEND": "duckdb"})
    api_env.reset()  # the Postgres run must send its own requests (nothing cached in the emulator)
    pg_vars = {k: v for k, v in os.environ.items() if k.startswith("HARVEST_")}
    homes = [tmp_path / f"pod-{i}" for i in range(4)]
    pg = _chain(homes, {**base, **pg_vars, "HARVEST_STORAGE_URL": s3_env})

    documents = duck["collect"]["summaries"]
    assert documents >= 20 and duck["collect"]["indexed"] == documents
    assert pg["submit"]["sent"] == duck["submit"]["sent"] == documents
    assert pg["sensor"]["ended"] == pg["submit"]["batch_ids"]  # another node saw the submit's batch
    assert pg["collect"]["indexed"] == pg["collect"]["summaries"] == documents
    # Vector retrieval is the same metric over the same vectors: the same sources, so the same answer.
    pg_vector, duck_vector = pg["ask"]["vector"], duck["ask"]["vector"]
    assert [s["chunk_id"] for s in pg_vector["sources"]] == [s["chunk_id"] for s in duck_vector["sources"]]
    assert pg_vector["answer"] == duck_vector["answer"]
    # Hybrid: keyword scores are BM25 on both, but over different tokenizers/length norms (tsvector vs
    # fts), so lower ranks may swap; the best source must agree.
    assert pg["ask"]["hybrid"]["sources"][0]["chunk_id"] == duck["ask"]["hybrid"]["sources"][0]["chunk_id"]
    # no node kept state for another: no ledger or DuckDB file in any pod's home
    for home in homes:
        assert not list(home.rglob("ledger.sqlite*")) and not list(home.rglob("*.duckdb")), home
    with psycopg.connect(pg_env.postgres_dsn or "") as con:
        statuses = con.execute(f"SELECT status FROM {pg_env.postgres_schema}.batches").fetchall()
    assert statuses == [("collected",)]
