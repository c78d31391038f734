"""SIGKILL a real harvesting process at the dangerous moments, restart it, count batches and rows.

The child is a plain script running ``pipeline.run(claude_message_batches(...))`` against the session's
emulator over HTTP. Kills are real SIGKILLs: self-inflicted at exact points (right after the create call
answered, before the ledger heard of it; mid-collect after some rows were yielded) or sent by this test
while the child waits for its batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.ledger import BatchLedger

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from harvest_defs.harvest.claude import collect as hmod
    from harvest_defs.harvest.claude import ClaudeBatchHarvester, claude_message_batches
    from harvest_defs.harvest.pipeline import create_duckdb_pipeline

    work, url, kill = sys.argv[1], sys.argv[2], sys.argv[3]
    ClaudeBatchHarvester.race_wait_seconds = 0.2

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if kill == "after_create":  # the API created the batch; the ledger never heard of it
        create = ClaudeBatchHarvester._create
        def _create(self, *args, **kwargs):
            create(self, *args, **kwargs)
            die()
        ClaudeBatchHarvester._create = _create
    if kill == "mid_collect":  # some rows of the first batch went to dlt, then the process dies
        parse = hmod.parse_results
        def _parse(*args, **kwargs):
            kwargs["chunk_rows"] = 40
            for i, chunk in enumerate(parse(*args, **kwargs)):
                if i == 2:
                    die()
                yield chunk
        hmod.parse_results = _parse

    prompts = [
        {"custom_id": f"doc_{i}", "text": f"Summarize: Document {i}. It has details."} for i in range(250)
    ]
    pipeline = create_duckdb_pipeline(
        "kill_test", "ai", destination_path=f"{work}/w.duckdb", pipelines_dir=f"{work}/pipes"
    )
    if pipeline.has_pending_data:  # a package a killed run left behind loads first
        pipeline.run()
    pipeline.run(
        claude_message_batches(
            prompts, model="claude-haiku-4-5", max_tokens=64, api_key="sk-ant-test-key", base_url=url,
            poll_interval=0.2, max_requests_per_batch=100,
        )
    )
    print("done")
    """
)


def _start(tmp_path: Path, emulator: EmulatorServer, kill: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), emulator.anthropic_base_url, kill],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def _rows(tmp_path: Path) -> tuple[int, int, int]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT custom_id), count(*) FILTER (success) FROM ai.claude_messages"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _kill_when_waiting(proc: subprocess.Popen[str], ledger_path: Path, batches: int) -> None:
    """SIGKILL the child once the ledger shows all its batches in flight (it is then polling)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger_path.exists() and len(BatchLedger(ledger_path).in_flight("claude")) == batches:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # let the last record_requests land (a kill before it is covered by resume too)
    proc.send_signal(signal.SIGKILL)


def test_sigkill_after_create_while_waiting_and_mid_collect_then_restart(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """One chain of four processes (each start costs seconds of imports on this machine)."""
    emulator.configure(anthropic_batch_max_requests=100)
    code, out = _finish(_start(tmp_path, emulator, "after_create"))
    assert code == -signal.SIGKILL, out
    assert emulator.stats()["anthropic_batches_created"] == 1  # paid for, unknown to the ledger

    # restart: adopts the orphan, creates the other two, then is killed while polling
    emulator.configure(batch_processing_seconds=60)
    proc = _start(tmp_path, emulator, "none")
    _kill_when_waiting(proc, tmp_path / "pipes" / "kill_test.harvest" / "ledger.sqlite", 3)
    code, out = _finish(proc)
    assert code == -signal.SIGKILL, out
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] == 3  # the orphan was adopted, not bought again
    assert stats["anthropic_batch_requests"] == 250

    # restart: resumes the three batches, dies after yielding some rows of the first
    emulator.configure(batch_processing_seconds=0)
    code, out = _finish(_start(tmp_path, emulator, "mid_collect"))
    assert code == -signal.SIGKILL, out
    assert emulator.stats()["anthropic_batches_created"] == 3

    code, out = _finish(_start(tmp_path, emulator, "none"))
    assert code == 0 and "done" in out, out
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] == 3 and stats["anthropic_batch_requests"] == 250
    assert stats["anthropic_results_downloads"] == 3  # raw files written before the kill were reused
    assert _rows(tmp_path) == (250, 250, 250)
