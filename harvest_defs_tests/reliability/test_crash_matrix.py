"""Crash matrix: real processes SIGKILLed at every dangerous stage, restarted, then counted.

Each target runs as a chain of processes against the session's emulator: the first dies before the
batch create call, its restart dies right after the create call was answered, the next while polling,
the next mid-download, the next mid-load, and the last one finishes. Each restart therefore has to
recover from exactly the state the previous kill left (a reserved slot with no batch, an orphaned batch
the ledger never heard of, a half-written ``.part`` file, a load package whose rows are already in
DuckDB). After every step the emulator's counters must show no batch bought twice; at the end the
destination holds every result exactly once. The outcome of each stage is printed as a matrix.

Kill points: ``mid_poll`` for the blocking Claude harvester is a SIGKILL sent from here when the ledger
shows polled progress (an observable event; the batches take 60 s, so the child is certainly polling);
every other point is a self-inflicted SIGKILL at an exact call (see ``crash_child``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from harvest_defs.emulator import EmulatorConfig, EmulatorServer
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY
from harvest_defs_tests.reliability import crash_child

STAGES = ["before_create", "after_create", "mid_poll", "mid_download", "mid_load"]
CHILD = [sys.executable, "-m", "harvest_defs_tests.reliability.crash_child"]


def _env(emulator: EmulatorServer, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": emulator.anthropic_base_url,
        "VOYAGE_API_KEY": TEST_VOYAGE_KEY,
        "VOYAGE_BASE_URL": emulator.voyage_base_url,
        "HARVEST_HOME": str(home),
    }


def _polled(ledger: Path, provider: str, batches: int) -> Callable[[], bool]:
    """True once every batch of the provider is in flight and a poll has recorded its counts."""

    def check() -> bool:
        if not ledger.exists():
            return False
        try:
            with sqlite3.connect(ledger, timeout=1) as con:
                row = con.execute(
                    "SELECT count(*) FROM batches WHERE provider = ? AND status = 'in_progress' "
                    "AND batch_id IS NOT NULL AND request_counts IS NOT NULL",
                    (provider,),
                ).fetchone()
        except sqlite3.Error:
            return False
        return bool(row) and row[0] >= batches

    return check


def _run_child(
    args: list[str], env: dict[str, str], kill_when: Callable[[], bool] | None = None
) -> tuple[int, str]:
    proc = subprocess.Popen(
        [*CHILD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if kill_when is not None:
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline and not kill_when():
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def _counts(db: Path, table: str, key: str) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _chain(
    name: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    created_key: str,
    request_sets: int,
    extra_args: list[str],
    matrix: Callable[[str, str, str, str], None],
    external_poll: tuple[str, int] | None,
) -> None:
    """Run the five killed processes and the final one, asserting after each step."""
    env = _env(emulator, tmp_path / "home")
    for stage in [*STAGES, "none"]:
        kill_when = None
        child_stage = stage
        if stage == "mid_poll" and external_poll is not None:
            emulator.configure(batch_processing_seconds=60.0)
            provider, batches = external_poll
            kill_when = _polled(tmp_path / "harvest" / "ledger.sqlite", provider, batches)
            child_stage = "none"
        else:
            emulator.configure(batch_processing_seconds=0.0)
        code, out = _run_child([name, child_stage, str(tmp_path), *extra_args], env, kill_when)
        created = emulator.stats().get(created_key, 0)
        if stage == "none":
            assert code == 0 and "DONE" in out, out[-3000:]
            matrix("crash", name, "final run", f"exit 0, batches created {created}/{request_sets}")
        else:
            assert code == -signal.SIGKILL, f"{name}/{stage} did not die by SIGKILL:\n{out[-3000:]}"
            if kill_when is None:
                assert f"REACHED {stage}" in out, f"{name} died before reaching {stage}:\n{out[-3000:]}"
            matrix("crash", name, stage, f"SIGKILL; batches created so far {created}/{request_sets}")
        assert created <= request_sets, f"{name}: a batch was bought twice after {stage}"
    assert emulator.stats()[created_key] == request_sets


def _claude(emulator: EmulatorServer, work: Path, matrix: Callable[[str, str, str, str], None]) -> None:
    sets = crash_child.N_PROMPTS // crash_child.PROMPTS_PER_BATCH + 1
    _chain("claude", emulator, work, "anthropic_batches_created", sets, [], matrix, ("claude", sets))
    assert emulator.stats()["anthropic_batch_requests"] == crash_child.N_PROMPTS  # none bought twice
    n = crash_child.N_PROMPTS
    db = work / "claude.duckdb"
    assert _counts(db, "ai.claude_messages", "custom_id") == (n, n)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ai.claude_messages WHERE NOT success").fetchone() == (0,)
    # A killed download leaves only a pid-named .part file; the raw files kept are whole.
    raw = sorted((work / "harvest" / "raw" / "claude").glob("*.jsonl"))
    assert len(raw) == sets
    assert sum(len(p.read_bytes().splitlines()) for p in raw) == n


def _voyage(emulator: EmulatorServer, work: Path, matrix: Callable[[str, str, str, str], None]) -> None:
    _chain("voyage", emulator, work, "voyage_batches_created", 1, [], matrix, None)
    assert emulator.stats()["voyage_batch_inputs"] == crash_child.N_TEXTS
    n = crash_child.N_TEXTS
    assert _counts(work / "voyage.duckdb", "ai.voyage_embeddings", "embedding_id") == (n, n)


def _dagster(emulator: EmulatorServer, work: Path, matrix: Callable[[str, str, str, str], None]) -> None:
    from harvest_defs_tests.defs.conftest import write_corpus

    docs = {
        f"doc{i}.md": f"# Doc {i}\n\nDocument {i} is about topic {i % 3}. It has details.\n" for i in range(8)
    }
    corpus = write_corpus(work / "corpus", {"alpha": docs})
    _chain("dagster", emulator, work, "anthropic_batches_created", 1, [str(corpus)], matrix, None)
    assert emulator.stats()["anthropic_batch_requests"] == len(docs)
    warehouse = work / "home" / "warehouse.duckdb"
    assert _counts(warehouse, "harvest.claude_messages", "custom_id") == (len(docs), len(docs))
    assert _counts(warehouse, "harvest.voyage_embeddings", "embedding_id") == (len(docs), len(docs))


CHAINS = {"claude": _claude, "voyage": _voyage, "dagster": _dagster}


@pytest.mark.timeout(400)
def test_every_target_survives_sigkill_at_every_stage(
    tmp_path: Path, matrix: Callable[[str, str, str, str], None]
) -> None:
    """The three chains run at once (own emulator and folder each): the suite pays ~max, not the sum."""
    errors: dict[str, BaseException] = {}

    def run(name: str) -> None:
        try:
            with EmulatorServer(EmulatorConfig(batch_processing_seconds=0.0)) as emulator:
                CHAINS[name](emulator, tmp_path / name, matrix)
        except BaseException as error:  # reported below, with the chain's name
            errors[name] = error

    threads = [threading.Thread(target=run, args=(name,)) for name in CHAINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, error in errors.items():
        raise AssertionError(f"{name} chain failed: {error}") from error
