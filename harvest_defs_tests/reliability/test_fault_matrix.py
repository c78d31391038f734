"""Fault matrix: every fault the emulator can inject, against both batch harvesters, through the real SDKs.

Each case must end in one of two ways within its pytest-timeout: the harvest completes and every input is
accounted for (rows + failure rows == inputs: nothing silently dropped), or a typed SDK error is raised and
the ledger still holds the batch for a later collect. The outcome of each cell is printed as a matrix.

The 429 cases fill the emulator's rate window with requests stamped 59.5 s ago (server state, not a client
mock), so the real 429 carries ``retry-after: 1`` and the SDK's real retry waits one second, not sixty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude import ClaudeBatchHarvester, ResultsArchivedError
from harvest_defs.harvest.claude.client import make_client
from harvest_defs.harvest.ledger import BatchLedger
from harvest_defs.harvest.voyage import VoyageBatchHarvester
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY

N = 20
MODEL = "claude-haiku-4-5"
Matrix = Callable[[str, str, str, str], None]


def _fill_rate_window(emulator: EmulatorServer, api: str, rpm: int) -> None:
    """The next request is over ``rpm`` for one more second: a real 429 with ``retry-after: 1``."""
    window = emulator.state.windows[api]  # type: ignore[index]
    stamp = time.monotonic() - 59.5
    with emulator.state.lock:
        for _ in range(rpm):
            window.events.append((stamp, 0))


def _claude(emulator: EmulatorServer, tmp_path: Path, max_retries: int = 5) -> ClaudeBatchHarvester:
    harvester = ClaudeBatchHarvester(
        TEST_ANTHROPIC_KEY,
        emulator.anthropic_base_url,
        ledger_path=tmp_path / "ledger.sqlite",
        raw_dir=tmp_path / "raw",
        poll_interval=0.05,
    )
    harvester._client = make_client(TEST_ANTHROPIC_KEY, emulator.anthropic_base_url, max_retries)
    return harvester


def _voyage(emulator: EmulatorServer, tmp_path: Path) -> VoyageBatchHarvester:
    return VoyageBatchHarvester(
        api_key=TEST_VOYAGE_KEY,
        base_url=emulator.voyage_base_url,
        ledger_path=tmp_path / "ledger.sqlite",
        raw_dir=tmp_path / "raw",
        poll_interval=0.05,
    )


def _claude_run(
    harvester: ClaudeBatchHarvester, on_submit: Callable[[list[str]], None] | None = None
) -> pa.Table:
    prompts = [
        {"custom_id": f"c{i}", "text": f"Summarize: item {i} is about topic {i % 4}."} for i in range(N)
    ]
    report = harvester.submit(prompts, model=MODEL, max_tokens=32)
    if on_submit is not None:
        on_submit(report.batch_ids)
    harvester.wait(report.batch_ids, timeout=30)
    return pa.concat_tables([t for b in report.batch_ids for t in harvester.collect(b)])


def _voyage_run(
    harvester: VoyageBatchHarvester, on_submit: Callable[[list[str]], None] | None = None
) -> tuple[int, int]:
    """(rows, failed requests in the ledger) for one submit/wait/collect."""
    items = [{"id": f"v{i}", "text": f"voyage text {i} about subject {i % 5}"} for i in range(N)]
    report = harvester.submit(items)
    if on_submit is not None:
        on_submit(report.batch_ids)
    harvester.wait(report.batch_ids)
    rows = sum(t.num_rows for b in report.batch_ids for t in harvester.collect(b))
    hashes = [harvester.request_hash(i) for i in _voyage_inputs(harvester, items)]
    states = harvester.ledger.request_states("voyage", hashes)
    return rows, sum(1 for s in states.values() if s == "failed")


def _voyage_inputs(harvester: VoyageBatchHarvester, items: list[dict[str, str]]) -> list[Any]:
    from harvest_defs.harvest.voyage.packing import prepare_inputs

    return prepare_inputs(items, harvester.spec, truncation=True).inputs


def _accounted(table: pa.Table) -> tuple[int, int]:
    ok = sum(1 for s in table.column("success").to_pylist() if s)
    return ok, table.num_rows - ok


TRANSIENT = {
    "500": {"fault_rate_500": 0.3},
    "529/503": {"fault_rate_529": 0.3},
    "dropped conn": {"fault_rate_drop": 0.3},
    "slow (150 ms)": {"latency_ms": 150.0},
    # seed 1: the first results download is cut mid-stream, the second is whole (seeded coin flips).
    "cut stream": {"results_truncate_rate": 0.5, "seed": 1},
}
COUNTERS = {
    "500": "faults_500",
    "529/503": "faults_529",
    "dropped conn": "faults_drop",
    "slow (150 ms)": None,
    "cut stream": None,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_claude_transient_faults_are_retried_to_completion(
    emulator: EmulatorServer, tmp_path: Path, fault: str, matrix: Matrix
) -> None:
    emulator.configure(**TRANSIENT[fault])
    emulator.reset()  # re-seeds the fault coin
    table = _claude_run(_claude(emulator, tmp_path))
    stats = emulator.stats()
    counter = COUNTERS[fault] or ("anthropic_results_truncated" if fault == "cut stream" else None)
    if counter:
        assert stats.get(counter, 0) > 0, f"the fault was never injected: {stats}"
    assert _accounted(table) == (N, 0)
    assert sorted(table.column("custom_id").to_pylist()) == sorted(f"c{i}" for i in range(N))
    assert stats["anthropic_batches_created"] == 1
    matrix(
        "fault",
        "claude",
        fault,
        f"-> {N}/{N} rows, 1 batch, " + (f"{counter}={stats[counter]}" if counter else "no timeout"),
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_voyage_transient_faults_are_retried_to_completion(
    emulator: EmulatorServer, tmp_path: Path, fault: str, matrix: Matrix
) -> None:
    emulator.configure(**TRANSIENT[fault])
    emulator.reset()
    rows, failed = _voyage_run(_voyage(emulator, tmp_path))
    stats = emulator.stats()
    counter = COUNTERS[fault] or ("voyage_results_truncated" if fault == "cut stream" else None)
    if counter:
        assert stats.get(counter, 0) > 0, f"the fault was never injected: {stats}"
    assert (rows, failed) == (N, 0)
    assert stats["voyage_batches_created"] == 1
    matrix(
        "fault",
        "voyage",
        fault,
        f"-> {rows}/{N} rows, 1 batch, " + (f"{counter}={stats[counter]}" if counter else "no timeout"),
    )


@pytest.mark.timeout(60)
def test_429_with_retry_after_is_honoured_by_both_harvesters(
    emulator: EmulatorServer, tmp_path: Path, matrix: Matrix
) -> None:
    emulator.configure(anthropic_rpm=1000, voyage_rpm=1000)
    _fill_rate_window(emulator, "anthropic", 1000)
    started = time.monotonic()
    table = _claude_run(_claude(emulator, tmp_path / "c"))
    assert emulator.stats()["anthropic_429s"] >= 1 and _accounted(table) == (N, 0)
    matrix("fault", "claude", "429 retry-after", f"waited {time.monotonic() - started:.1f} s -> {N}/{N} rows")
    _fill_rate_window(emulator, "voyage", 1000)
    started = time.monotonic()
    assert _voyage_run(_voyage(emulator, tmp_path / "v")) == (N, 0)
    assert emulator.stats()["voyage_429s"] >= 1
    matrix("fault", "voyage", "429 retry-after", f"waited {time.monotonic() - started:.1f} s -> {N}/{N} rows")


@pytest.mark.timeout(60)
def test_expired_and_canceled_requests_become_failure_rows_never_drops(
    emulator: EmulatorServer, tmp_path: Path, matrix: Matrix
) -> None:
    emulator.configure(batch_expired_rate=0.3)
    ok, failed = _accounted(_claude_run(_claude(emulator, tmp_path / "c1")))
    assert failed > 0 and ok + failed == N
    matrix("fault", "claude", "expired", f"{ok} ok + {failed} failure rows = {N}")
    rows, vfailed = _voyage_run(_voyage(emulator, tmp_path / "v1"))
    assert vfailed > 0 and rows + vfailed == N
    matrix("fault", "voyage", "expired", f"{rows} rows + {vfailed} failed in ledger = {N}")

    emulator.configure(batch_expired_rate=0.0, batch_processing_seconds=30.0)
    claude = _claude(emulator, tmp_path / "c2")
    table = _claude_run(claude, lambda ids: [claude.client.messages.batches.cancel(b) for b in ids])
    ok, failed = _accounted(table)
    assert ok + failed == N and failed > 0
    assert set(table.filter(pa.compute.invert(table["success"]))["error_type"].to_pylist()) == {"canceled"}
    matrix("fault", "claude", "canceled", f"{ok} ok + {failed} canceled rows = {N}")
    voyage = _voyage(emulator, tmp_path / "v2")
    rows, vfailed = _voyage_run(voyage, lambda ids: [voyage.client.batches.cancel(b) for b in ids])
    assert rows + vfailed == N and vfailed > 0
    matrix("fault", "voyage", "cancelled", f"{rows} rows + {vfailed} failed in ledger = {N}")


@pytest.mark.timeout(60)
def test_archived_results_and_persistent_errors_are_typed_errors_and_keep_the_batch(
    emulator: EmulatorServer, tmp_path: Path, matrix: Matrix
) -> None:
    import anthropic
    import openai

    emulator.configure(results_archive_seconds=0.0)
    harvester = _claude(emulator, tmp_path / "a")
    report = harvester.submit([f"archived text {i}" for i in range(N)], model=MODEL, max_tokens=32)
    harvester.wait(report.batch_ids, timeout=30)
    # No results_url any more: a dedicated, typed error that says what happened and what to do.
    with pytest.raises(ResultsArchivedError, match=r"archived .* resubmit"):
        list(harvester.collect(report.batch_ids[0]))
    row = BatchLedger(tmp_path / "a" / "ledger.sqlite").get(report.batch_ids[0])
    assert row is not None and row.status == "ended"  # not marked collected: nothing claims to be loaded
    matrix("fault", "claude", "archived", "ResultsArchivedError, batch stays 'ended'")

    emulator.configure(results_archive_seconds=None, fault_rate_500=1.0)
    with pytest.raises(anthropic.InternalServerError):
        _claude(emulator, tmp_path / "p", max_retries=1).submit(["x y z"], model=MODEL, max_tokens=8)
    matrix("fault", "claude", "500 always", "anthropic.InternalServerError after the SDK's retries")
    voyage = _voyage(emulator, tmp_path / "pv")
    voyage._client = openai.OpenAI(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        voyage.submit(["x y z"])
    matrix("fault", "voyage", "500 always", "openai.InternalServerError after the SDK's retries")
