"""The ledger protocol, run on both backends (``harvest/test_ledger.py`` checks the SQLite file alone).

Processes are spawned with only a home path; the backend comes from the environment they inherit, as a
Dagster run pod's would. For Postgres, two homes mean two "machines": nothing is shared but the server.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from harvest_defs.harvest.backends import BackendSettings, open_ledger
from harvest_defs.harvest.ledger import COLLECTED, ENDED, IN_PROGRESS, LOST, BatchLedger

LedgerAt = Callable[[Path], BatchLedger]


def _race_reserve(path: str, barrier: object, results: object) -> None:
    ledger = open_ledger(path)
    barrier.wait()  # type: ignore[attr-defined]
    row = ledger.reserve("claude", "set-1", 0, 10, "p1")
    results.put(row.fresh)  # type: ignore[attr-defined]


def test_only_one_of_many_racing_processes_may_create(
    tmp_path: Path, ledger_at: LedgerAt, backend: BackendSettings
) -> None:
    ledger_at(tmp_path / "shared" / "ledger.sqlite")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    # Postgres: each process its own home (no shared disk); SQLite: one file, the only way it can work.
    homes = [tmp_path / ("shared" if backend.name == "duckdb" else f"node{i}") for i in range(4)]
    procs = [
        ctx.Process(target=_race_reserve, args=(str(home / "ledger.sqlite"), barrier, results))
        for home in homes
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    fresh = [results.get(timeout=5) for _ in procs]
    assert sorted(fresh) == [False] * 3 + [True]
    if backend.name == "postgres":
        assert not any((home / "ledger.sqlite").exists() for home in homes)


def test_batch_id_recorded_before_a_sigkill_survives_it(tmp_path: Path, ledger_at: LedgerAt) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from harvest_defs.harvest.backends import open_ledger
        ledger = open_ledger({str(tmp_path / "a" / "ledger.sqlite")!r})
        ledger.reserve("claude", "set-1", 0, 3, "p1", {{"model": "m"}})
        ledger.record_created("claude", "set-1", 0, "msgbatch_abc")
        ledger.record_requests("claude", "msgbatch_abc", [("h1", "a"), ("h2", "b"), ("h3", "c")])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    ledger = ledger_at(tmp_path / "a" / "ledger.sqlite")
    row = ledger.reserve("claude", "set-1", 0, 3, "p1")
    assert (row.fresh, row.batch_id, row.status) == (False, "msgbatch_abc", IN_PROGRESS)
    assert row.meta == {"model": "m"}
    assert [b.batch_id for b in ledger.in_flight("claude", "p1")] == ["msgbatch_abc"]
    assert ledger.request_states("claude", ["h1", "h2", "h3", "h4"]) == dict.fromkeys(
        ["h1", "h2", "h3"], "submitted"
    )


def test_lifecycle_and_partition_filters(tmp_path: Path, ledger_at: LedgerAt) -> None:
    ledger = ledger_at(tmp_path / "ledger.sqlite")
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
    assert ledger.get("b2").ended_at > ledger.get("b2").created_at - 1  # type: ignore[union-attr,operator]


def test_abandon_rearm_meta_and_uncreated(tmp_path: Path, ledger_at: LedgerAt) -> None:
    ledger = ledger_at(tmp_path / "ledger.sqlite")
    assert ledger.reserve("voyage", "s", 0, 5).fresh
    assert not ledger.reserve("voyage", "s", 0, 5).fresh
    assert [b.request_set_hash for b in ledger.uncreated("voyage")] == ["s"]
    ledger.abandon("voyage", "s", 0)
    assert ledger.uncreated("voyage") == []
    assert ledger.reserve("voyage", "s", 0, 5).fresh
    ledger.update_meta("voyage", "s", 0, input_file_id="file-1")
    ledger.record_created("voyage", "s", 0, "batch-1", {"x": 1})
    assert ledger.get("batch-1").meta == {"input_file_id": "file-1", "x": 1}  # type: ignore[union-attr]


def test_request_outcomes_lost_batches_and_submissions(tmp_path: Path, ledger_at: LedgerAt) -> None:
    ledger = ledger_at(tmp_path / "ledger.sqlite")
    hashes = [f"{i:064x}" for i in range(5_000)]
    ledger.record_requests("claude", "b1", ((h, f"c{i}") for i, h in enumerate(hashes)))
    ledger.record_outcomes("claude", [(hashes[0], True), (hashes[1], False)])
    ledger.record_outcomes("claude", [(hashes[2], True)], batch_id="older")  # not its latest batch
    states = ledger.request_states("claude", [*hashes, "unknown"])
    assert len(states) == 5_000 and "unknown" not in states
    assert (states[hashes[0]], states[hashes[1]], states[hashes[2]]) == ("succeeded", "failed", "submitted")
    assert ledger.request_locations("claude", hashes[:1]) == {hashes[0]: ("succeeded", "b1", "c0")}
    assert ledger.request_states("voyage", hashes) == {}
    assert ledger.request_counts_by_state("claude") == {"succeeded": 1, "failed": 1, "submitted": 4_998}
    ledger.reserve("claude", "set", 0, 5_000, "p1")
    ledger.record_created("claude", "set", 0, "b1")
    ledger.mark_lost("b1", "404")
    assert [(b.batch_id, b.status, b.meta["lost_reason"]) for b in ledger.lost()] == [("b1", LOST, "404")]
    assert ledger.request_counts_by_state("claude") == {"succeeded": 1, "failed": 1, "lost": 4_998}
    assert ledger.rearm_lost("claude", "b1") == 4_998
    first = ledger.record_submission("claude", "p1", ["b1", "b1", "b2"])
    second = ledger.record_submission("claude", "p2", [])
    assert second > first
    assert [(s.partition_key, s.batch_ids) for s in ledger.open_submissions("claude")] == [
        ("p1", ["b1", "b2"]),
        ("p2", []),
    ]
    ledger.close_submissions([first])
    assert [s.submission_id for s in ledger.open_submissions("claude", "p2")] == [second]
    assert ledger.open_submissions("claude", "p1") == []
