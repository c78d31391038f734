"""Concurrency: readers and the sensor never break (or get broken by) a writer.

Complements the existing tests (reused, not duplicated: see RELIABILITY.md): two materializations writing
the same warehouse (``defs/test_chain.py``), ``harvest search`` and in-process readers during rebuilds
(``rag/test_index.py``). Added here: a real ``harvest ask`` process (Voyage + Claude over HTTP) while the
index file is rebuilt and swapped under it, and the batch sensor ticking again and again while the collect
run it requested is loading (it must neither fail, nor request a second run, nor touch DuckDB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection, register_collections, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer
from harvest_defs.rag.index import build_index
from harvest_defs_tests.rag.conftest import corpus_documents, rows_for

HARVEST = shutil.which("harvest") or str(Path(sys.executable).with_name("harvest"))


@pytest.mark.timeout(120)
def test_harvest_ask_process_answers_while_the_index_is_rebuilt(
    api_env: EmulatorServer, tmp_path: Path, matrix: object
) -> None:
    from harvest_defs_tests.reliability.conftest import record

    path = tmp_path / "rag.duckdb"
    documents = corpus_documents()
    full, part = rows_for(documents), rows_for(dict(list(documents.items())[:15]))
    build_index(full, path)
    stop = threading.Event()
    rebuilds: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        while not stop.is_set():
            try:
                build_index(part if len(rebuilds) % 2 == 0 else full, path, prune=True)
                rebuilds.append(1)
            except BaseException as error:  # the writer must not fail because a reader is open
                errors.append(error)
                return

    thread = threading.Thread(target=writer)
    thread.start()
    outcomes = []
    try:
        for _ in range(1):
            outcomes.append(
                subprocess.run(
                    [HARVEST, "ask", "Who acknowledges an on-call page?", "--json", "--index", str(path)],
                    capture_output=True,
                    text=True,
                    timeout=90,
                    env=dict(os.environ),
                )
            )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == [] and len(rebuilds) >= 2
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stdout + outcome.stderr
        answer = json.loads(outcome.stdout)
        assert answer["answer"] and answer["sources"]
    with duckdb.connect(str(path), read_only=True) as con:  # the file is whole after the race
        assert con.execute("SELECT count(*) FROM chunks").fetchone() in ((len(documents),), (15,))
    record(
        "concurrency",
        "ask",
        "during rebuild",
        f"{len(outcomes)}/1 answered, {len(rebuilds)} rebuilds, 0 errors",
    )


@pytest.mark.timeout(120)
def test_sensor_ticks_during_a_collect_run_request_nothing_twice(
    api_env: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, matrix: object
) -> None:
    from harvest_defs_tests.defs.conftest import write_corpus
    from harvest_defs_tests.reliability.conftest import record

    home = tmp_path / "home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    corpus = write_corpus(tmp_path / "corpus")
    defs = build_defs(corpus, sensor_interval=1)
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        register_collections(instance, corpus)
        materialize_selection(defs, instance, ["documents", "claude_summary_batches"], "alpha")
        first = tick_sensor(defs, instance, "claude_batch_sensor", None)
        assert len(first.run_requests) == 1
        api_env.configure(latency_ms=150.0)  # every API call of the collect run is slow: ticks overlap it
        tick_errors: list[BaseException] = []
        extra_requests: list[dg.RunRequest] = []
        ticks = 0
        done = threading.Event()

        def ticker() -> None:
            nonlocal ticks
            cursor = first.cursor
            while not done.is_set():
                try:
                    tick = tick_sensor(defs, instance, "claude_batch_sensor", cursor)
                    cursor = tick.cursor or cursor
                    extra_requests.extend(tick.run_requests)
                    ticks += 1
                except BaseException as error:
                    tick_errors.append(error)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=ticker)
        thread.start()
        try:
            [collected] = run_requests(defs, instance, first.run_requests)
        finally:
            done.set()
            thread.join(timeout=60)
        assert collected.success
        assert tick_errors == [] and extra_requests == [] and ticks >= 2
        after = tick_sensor(defs, instance, "claude_batch_sensor", None)  # even with a lost cursor
        assert after.run_requests == []  # the batch is collected: nothing left to request
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT custom_id) FROM harvest.claude_messages"
        ).fetchone() == (
            2,
            2,
        )
    record("concurrency", "sensor", "during collect", f"{ticks} ticks, 0 errors, 0 duplicate run requests")
