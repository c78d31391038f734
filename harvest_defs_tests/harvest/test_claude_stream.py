"""Streaming input: every source kind sends what the list sends; a SIGKILL mid-stream never pays twice.

Real parts only: the anthropic SDK over HTTP to the session's emulator, the SQLite ledger, a real dlt
pipeline into DuckDB in a child process that is really SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude import ClaudeBatchHarvester
from harvest_defs.harvest.streaming import SeenIds, iter_windows
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"
WINDOW = 10


def _prompts(n: int) -> list[Any]:
    """Explicit ids, id-less repeats across windows, one id reused across windows, invalid prompts."""
    out: list[Any] = []
    for i in range(n):
        if i % 10 == 3:
            out.append(f"Summarize: shared text {i // 10 % 2}.")  # no id: 2 contents, one per window
        elif i % 17 == 5:
            out.append({"custom_id": "dup", "text": f"Summarize: dup {i}."})  # windows 0, 2, 3, 5...
        elif i % 23 == 7:
            out.append({"custom_id": f"bad_{i}", "text": "  "})
        else:
            out.append({"custom_id": f"doc_{i}", "text": f"Summarize: Document {i} has details."})
    return out


def _as_rows(prompts: list[Any]) -> list[dict[str, Any]]:
    return [{"text": p} if isinstance(p, str) else p for p in prompts]


def _ledger(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What the ledger says was sent: (hash, custom_id, state) per request; (set hash, chunk, n) per batch."""
    con = sqlite3.connect(path)
    try:
        requests = con.execute(
            "SELECT request_hash, custom_id, state FROM requests ORDER BY request_hash"
        ).fetchall()
        batches = con.execute(
            "SELECT request_set_hash, chunk_index, request_count FROM batches ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()
    return requests, batches


def _submit(emulator: EmulatorServer, work: Path, source: Any) -> dict[str, Any]:
    before = emulator.stats()

    def delta(key: str) -> int:
        return emulator.stats().get(key, 0) - before.get(key, 0)

    harvester = ClaudeBatchHarvester(
        TEST_ANTHROPIC_KEY,
        emulator.anthropic_base_url,
        ledger_path=work / "ledger.sqlite",
        raw_dir=work / "raw",
        max_requests_per_batch=4,
        log=lambda _m: None,
    )
    report = harvester.submit(source, MODEL, max_tokens=32, window=WINDOW)
    return {
        "sent": report.requests_sent,
        "resumed": report.requests_resumed,
        "cached": report.requests_cached,
        "merged": report.duplicates_merged,
        "skipped": report.duplicates_skipped,
        "invalid": sorted((item.index, item.custom_id) for item in report.invalid),
        "batches": len(report.batch_ids),
        "created": delta("anthropic_batches_created"),
        "billed_requests": delta("anthropic_batch_requests"),
        "ledger": _ledger(work / "ledger.sqlite"),
    }


def test_every_source_kind_sends_exactly_what_the_list_sends(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    prompts = _prompts(57)
    rows = _as_rows(prompts)
    parquet = tmp_path / "prompts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=7)  # groups straddle windows

    def generator() -> Iterator[Any]:
        yield from prompts

    sources: dict[str, Any] = {
        "list": prompts,
        "generator": generator(),
        "arrow": pa.Table.from_pylist(rows),
        "reader": pa.Table.from_pylist(rows).to_reader(max_chunksize=6),
        "polars": pl.DataFrame(rows),
        "lazy": pl.DataFrame(rows).lazy(),
        "parquet": parquet,
    }
    results = {name: _submit(emulator, tmp_path / name, source) for name, source in sources.items()}
    reference = results["list"]
    for name, result in results.items():
        assert result == reference, name

    requests, batches = reference["ledger"]
    ids = [cid for _, cid, _ in requests]
    # "dup" is sent once, with its first text; later "dup"s are skipped, not rejected after the fact
    assert ids.count("dup") == 1 and reference["skipped"] == 3
    # the id-less repeated contents are two requests for the whole stream, merged in every later window
    assert sum(cid.startswith("req_") for cid in ids) == 2
    assert reference["merged"] == 6 - 2  # 6 occurrences (#3, #13, .. #53) of 2 contents
    assert [cid for _, cid in reference["invalid"]] == ["bad_7", "bad_30"]  # #53 is a shared text
    # 45 doc_ prompts + 2 shared contents + the first "dup"
    assert reference["sent"] == reference["billed_requests"] == len(requests) == 48
    assert reference["created"] == len(batches) == reference["batches"]
    # every batch stays inside one input window: 4 per batch, windows of 10 -> 3 batches per full window
    assert all(count <= 4 for _, _, count in batches)


def test_a_second_submit_of_the_stream_sends_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    first = _submit(emulator, tmp_path, iter(_prompts(57)))
    again = _submit(emulator, tmp_path, iter(_prompts(57)))
    assert first["sent"] == 48 and again["sent"] == 0 and again["created"] == 0
    assert again["resumed"] + again["cached"] == 48 and again["ledger"] == first["ledger"]


def test_windows_are_fixed_input_positions_and_seen_ids_span_windows(tmp_path: Path) -> None:
    assert [len(w) for w in iter_windows(iter(range(23)), 10)] == [10, 10, 3]
    assert [w[0] for w in iter_windows(pa.table({"text": [str(i) for i in range(23)]}), 10)] == [
        {"text": "0"},
        {"text": "10"},
        {"text": "20"},
    ]
    with SeenIds(tmp_path) as seen:
        assert seen.check_and_add(["a", "b", "a"]) == set()  # repeats inside one call are the caller's
        assert seen.check_and_add(["b", "c"]) == {"b"}
        assert seen.count == 3
    assert not list(tmp_path.iterdir())  # the scratch file is gone
    with pytest.raises(TypeError):
        list(iter_windows(42, 10))


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from harvest_defs.harvest.claude import ClaudeBatchHarvester, claude_message_batches
    from harvest_defs.harvest.pipeline import create_duckdb_pipeline

    work, url, kill = sys.argv[1], sys.argv[2], sys.argv[3]
    ClaudeBatchHarvester.race_wait_seconds = 0.2
    if kill == "third_create":  # the 3rd batch exists at the API; the ledger never heard of it
        create = ClaudeBatchHarvester._create
        made = []
        def _create(self, *args, **kwargs):
            batch_id = create(self, *args, **kwargs)
            made.append(batch_id)
            if len(made) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return batch_id
        ClaudeBatchHarvester._create = _create

    def prompts():  # a generator: the stream cannot be re-read, only re-generated by the next run
        for i in range(60):
            yield {"custom_id": f"doc_{i}", "text": f"Summarize: Document {i}. It has details."}

    pipeline = create_duckdb_pipeline(
        "stream_kill", "ai", destination_path=f"{work}/w.duckdb", pipelines_dir=f"{work}/pipes"
    )
    if pipeline.has_pending_data:
        pipeline.run()
    pipeline.run(
        claude_message_batches(
            prompts(), model="claude-haiku-4-5", max_tokens=64, api_key="sk-ant-test-key", base_url=url,
            poll_interval=0.2, window=10,
        )
    )
    print("done")
    """
)


def _run_child(tmp_path: Path, emulator: EmulatorServer, kill: str) -> tuple[int, str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), emulator.anthropic_base_url, kill],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_sigkill_mid_stream_resumes_without_paying_twice(emulator: EmulatorServer, tmp_path: Path) -> None:
    code, out = _run_child(tmp_path, emulator, "third_create")
    assert code == -signal.SIGKILL, out
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] == 3 and stats["anthropic_batch_requests"] == 30

    code, out = _run_child(tmp_path, emulator, "none")
    assert code == 0 and "done" in out, out
    stats = emulator.stats()
    # windows 1-2 resumed, window 3's orphan adopted, windows 4-6 created: six batches, 60 requests
    assert stats["anthropic_batches_created"] == 6 and stats["anthropic_batch_requests"] == 60
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT custom_id), count(*) FILTER (success) FROM ai.claude_messages"
        ).fetchone()
    assert row == (60, 60, 60)
    requests, batches = _ledger(tmp_path / "pipes" / "stream_kill.harvest" / "ledger.sqlite")
    assert len(requests) == 60 and len(batches) == 6
    assert {state for _, _, state in requests} == {"succeeded"}
