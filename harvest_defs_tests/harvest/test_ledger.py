"""The ledger is what stops a second payment: test it across real processes, not just in one."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from harvest_defs.harvest.ledger import COLLECTED, ENDED, IN_PROGRESS, BatchLedger


def _race_reserve(path: str, barrier: object, results: object) -> None:
    ledger = BatchLedger(path)
    barrier.wait()  # type: ignore[attr-defined]
    row = ledger.reserve("claude", "set-1", 0, 10, "p1")
    results.put(row.fresh)  # type: ignore[attr-defined]


def test_only_one_of_many_racing_processes_may_create(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    BatchLedger(path)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_race_reserve, args=(path, barrier, results)) for _ in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    fresh = [results.get(timeout=5) for _ in procs]
    assert sorted(fresh) == [False] * 5 + [True]


def test_batch_id_recorded_before_a_sigkill_survives_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from harvest_defs.harvest.ledger import BatchLedger
        ledger = BatchLedger({str(path)!r})
        ledger.reserve("claude", "set-1", 0, 3, "p1", {{"model": "m"}})
        ledger.record_created("claude", "set-1", 0, "msgbatch_abc")
        ledger.record_requests("claude", "msgbatch_abc", [("h1", "a"), ("h2", "b"), ("h3", "c")])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    ledger = BatchLedger(path)
    row = ledger.reserve("claude", "set-1", 0, 3, "p1")
    assert (row.fresh, row.batch_id, row.status, row.meta) == (
        False,
        "msgbatch_abc",
        IN_PROGRESS,
        {"model": "m"},
    )
    assert [b.batch_id for b in ledger.in_flight("claude", "p1")] == ["msgbatch_abc"]
    assert ledger.request_states("claude", ["h1", "h2", "h3", "h4"]) == dict.fromkeys(
        ["h1", "h2", "h3"], "submitted"
    )


def test_lifecycle_and_partition_filters(tmp_path: Path) -> None:
    ledger = BatchLedger(tmp_path / "ledger.sqlite")
    for key, batch_id in (("p1", "b1"), ("p2", "b2")):
        ledger.reserve("claude", f"set-{key}", 0, 1, key)
        ledger.record_created("claude", f"set-{key}", 0, batch_id)
    assert [b.batch_id for b in ledger.in_flight("claude")] == ["b1", "b2"]
    assert ledger.in_flight("voyage") == []
    ledger.mark_ended("b1", {"succeeded": 1})
    assert [b.batch_id for b in ledger.ended_uncollected("claude", "p1")] == ["b1"]
    assert ledger.ended_uncollected("claude", "p2") == []
    assert ledger.get("b1").request_counts == {"succeeded": 1}  # type: ignore[union-attr]
    ledger.mark_collected("b1")
    ledger.mark_ended("b1")  # a late poll never re-opens a collected batch
    assert ledger.get("b1").status == COLLECTED  # type: ignore[union-attr]
    ledger.mark_ended("b2")
    assert ledger.get("b2").status == ENDED  # type: ignore[union-attr]


def test_abandoned_create_can_be_retried_and_uncreated_rows_are_listed(tmp_path: Path) -> None:
    ledger = BatchLedger(tmp_path / "ledger.sqlite")
    assert ledger.reserve("voyage", "s", 0, 5).fresh
    assert [b.request_set_hash for b in ledger.uncreated("voyage")] == ["s"]
    ledger.abandon("voyage", "s", 0)
    assert ledger.uncreated("voyage") == []
    assert ledger.reserve("voyage", "s", 0, 5).fresh
    ledger.update_meta("voyage", "s", 0, input_file_id="file-1")
    ledger.record_created("voyage", "s", 0, "batch-1", {"x": 1})
    assert ledger.get("batch-1").meta == {"input_file_id": "file-1", "x": 1}  # type: ignore[union-attr]


def test_request_outcomes_drive_the_cache(tmp_path: Path) -> None:
    ledger = BatchLedger(tmp_path / "ledger.sqlite")
    hashes = [f"{i:064x}" for i in range(20_000)]
    ledger.record_requests("claude", "b1", ((h, f"c{i}") for i, h in enumerate(hashes)))
    ledger.record_outcomes("claude", [(hashes[0], True), (hashes[1], False)])
    states = ledger.request_states("claude", [*hashes, "unknown"])
    assert len(states) == 20_000 and "unknown" not in states
    assert (states[hashes[0]], states[hashes[1]], states[hashes[2]]) == ("succeeded", "failed", "submitted")
    assert ledger.request_states("voyage", hashes) == {}
    assert ledger.request_counts_by_state("claude") == {"succeeded": 1, "failed": 1, "submitted": 19_998}
    assert os.path.exists(tmp_path / "ledger.sqlite-wal") or ledger.path.exists()
