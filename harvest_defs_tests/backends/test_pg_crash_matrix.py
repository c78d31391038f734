"""The crash matrix (``reliability/test_crash_matrix.py``) on Postgres with no shared disk: Claude, Voyage.

One chain of processes, each with a fresh ``HARVEST_HOME``: SIGKILL before the create call, right after
it was answered, while polling (from outside, when the Postgres ledger shows polled progress), mid-download
and mid-load; then a final run. After every step no batch is bought twice; at the end Postgres holds every
result exactly once and the bucket every raw file whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.harvest.storage import ObjectStore
from harvest_defs_tests.reliability import crash_child

STAGES = ["before_create", "after_create", "mid_poll", "mid_download", "mid_load", "none"]
CHILD = [sys.executable, "-m", "harvest_defs_tests.backends.pg_crash_child"]


def _polled(settings: BackendSettings, batches: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with psycopg.connect(settings.postgres_dsn or "", connect_timeout=2) as con:
                row = con.execute(
                    f"SELECT count(*) FROM {settings.postgres_schema}.batches WHERE status = 'in_progress' "
                    "AND batch_id IS NOT NULL AND request_counts IS NOT NULL"
                ).fetchone()
        except psycopg.Error:
            return False
        return bool(row) and row[0] >= batches

    return check


@pytest.mark.timeout(600)
def test_claude_survives_sigkill_at_every_stage_without_a_shared_disk(
    api_env: EmulatorServer, pg_env: BackendSettings, s3_env: str, tmp_path: Path
) -> None:
    from harvest_defs_tests.reliability.conftest import record

    sets = crash_child.N_PROMPTS // crash_child.PROMPTS_PER_BATCH + 1
    claude_child = [*CHILD, "claude"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARVEST_STORAGE_URL": s3_env}
    for i, stage in enumerate(STAGES):
        home = tmp_path / f"pod-{i}"
        home.mkdir()
        kill_when = None
        child_stage = stage
        if stage == "mid_poll":
            api_env.configure(
                batch_processing_seconds=60.0
            )  # read live: the kill comes at the first poll, and the next stage sets 0
            kill_when, child_stage = _polled(pg_env, sets), "none"
        else:
            api_env.configure(batch_processing_seconds=0.0)
        proc = subprocess.Popen(
            [*claude_child, child_stage, str(home)],
            env={**env, "HARVEST_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if kill_when is not None:
            deadline = time.monotonic() + 90
            while proc.poll() is None and time.monotonic() < deadline and not kill_when():
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=180)
        created = api_env.stats().get("anthropic_batches_created", 0)
        if stage == "none":
            assert proc.returncode == 0 and "DONE" in out, out[-3000:]
        else:
            assert proc.returncode == -signal.SIGKILL, f"{stage} did not die by SIGKILL:\n{out[-3000:]}"
            if kill_when is None:
                assert f"REACHED {stage}" in out, f"died before reaching {stage}:\n{out[-3000:]}"
        record("crash-postgres", "claude", stage, f"batches created so far {created}/{sets}")
        assert created <= sets, f"a batch was bought twice after {stage}"
    assert api_env.stats()["anthropic_batches_created"] == sets
    assert api_env.stats()["anthropic_batch_requests"] == crash_child.N_PROMPTS
    n = crash_child.N_PROMPTS
    with psycopg.connect(pg_env.postgres_dsn or "") as con:
        row = con.execute(
            f"SELECT count(*), count(DISTINCT custom_id), count(*) FILTER (WHERE NOT success) "
            f"FROM {pg_env.postgres_schema}_ai.claude_messages"
        ).fetchone()
        statuses = con.execute(f"SELECT DISTINCT status FROM {pg_env.postgres_schema}.batches").fetchall()
    assert row == (n, n, 0)
    assert statuses == [("collected",)]
    store = ObjectStore(s3_env)
    raw = [p for p in store.fs.find(f"{store.root}/raw/claude") if p.endswith(".jsonl")]
    assert len(raw) == sets and all(store.complete(p.removeprefix(store.root + "/")) for p in raw)
    assert sum(len(store.fs.cat_file(p).splitlines()) for p in raw) == n


@pytest.mark.timeout(600)
def test_voyage_batch_survives_sigkill_at_every_stage_without_a_shared_disk(
    api_env: EmulatorServer, pg_env: BackendSettings, s3_env: str, tmp_path: Path
) -> None:
    """The Voyage Batch API under the same matrix: one batch ever, every text loaded once, its output
    file whole in the bucket. The kill mid-poll comes from inside the poll (the Voyage emulator fixes a
    batch's duration at creation)."""
    from harvest_defs_tests.reliability.conftest import record

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARVEST_STORAGE_URL": s3_env}
    api_env.configure(batch_processing_seconds=0.0)
    for i, stage in enumerate(STAGES):
        home = tmp_path / f"pod-{i}"
        home.mkdir()
        done = subprocess.run(
            [*CHILD, "voyage", stage, str(home)],
            env={**env, "HARVEST_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=180,
        )
        out = done.stdout + done.stderr
        created = api_env.stats().get("voyage_batches_created", 0)
        if stage == "none":
            assert done.returncode == 0 and "DONE" in out, out[-3000:]
        else:
            assert done.returncode == -signal.SIGKILL, f"{stage} did not die by SIGKILL:\n{out[-3000:]}"
            assert f"REACHED {stage}" in out, f"died before reaching {stage}:\n{out[-3000:]}"
        record("crash-postgres", "voyage", stage, f"batches created so far {created}/1")
        assert created <= 1, f"a batch was bought twice after {stage}"
    assert api_env.stats()["voyage_batches_created"] == 1
    n = crash_child.N_TEXTS
    with psycopg.connect(pg_env.postgres_dsn or "") as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT embedding_id) "
            f"FROM {pg_env.postgres_schema}_ai.voyage_embeddings"
        ).fetchone()
    assert row == (n, n)
    store = ObjectStore(s3_env)
    raw = [
        p for p in store.fs.find(f"{store.root}/raw/voyage") if p.endswith(".jsonl") and "/inputs/" not in p
    ]
    outputs = [p for p in raw if not p.endswith(".errors.jsonl")]
    assert len(outputs) == 1 and store.complete(outputs[0].removeprefix(store.root + "/"))
    assert len(store.fs.cat_file(outputs[0]).splitlines()) == n
