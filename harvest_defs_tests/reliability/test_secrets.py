"""Secrets: the whole chain runs with recognizable keys, then every place a key could leak is scanned.

documents -> claude_summary_batches -> (sensor) -> claude_summaries + summary_embeddings -> rag_index ->
``answer`` (real SDKs, real Dagster runs on a persistent instance, real files), with the emulator accepting
only the canary keys. Scanned for the keys: every captured log record (all loggers, DEBUG), every Dagster
event of every run (message, user message, serialized event incl. metadata), every run's config and
tags, every byte of every file under HARVEST_HOME (ledger, raw results, manifests, dlt pipeline folders,
DuckDB files) and every text column of every DuckDB table; then the str/repr of the exceptions of a
forced auth failure (Claude and Voyage), and the failed run's error event. Expected hits: zero.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection, register_collections, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer

CLAUDE_KEY = "sk-ant-SECRET-CANARY-123"
VOYAGE_KEY = "pa-SECRET-CANARY-456"
CANARIES = (CLAUDE_KEY, VOYAGE_KEY, "SECRET-CANARY")


def _hits(text: str, where: str) -> list[str]:
    return [f"{where}: {c}" for c in CANARIES if c in text]


def _scan_files(home: Path) -> tuple[list[str], int]:
    hits: list[str] = []
    files = [p for p in home.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        hits.extend(f"{path}: {c}" for c in CANARIES if c.encode() in data)
    return hits, len(files)


def _scan_duckdb(path: Path) -> tuple[list[str], int]:
    hits: list[str] = []
    columns = 0
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' OR data_type LIKE '%JSON%'"
        ).fetchall()
        for schema, table, column in rows:
            columns += 1
            for canary in CANARIES:
                sql = f'SELECT count(*) FROM "{schema}"."{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?'
                found = con.execute(sql, [f"%{canary}%"]).fetchone()
                if found and found[0]:
                    hits.append(f"{path.name}:{schema}.{table}.{column}: {canary}")
    return hits, columns


def _scan_runs(instance: dg.DagsterInstance) -> tuple[list[str], int]:
    hits: list[str] = []
    events = 0
    for run in instance.get_runs():
        hits += _hits(repr(run.run_config) + repr(run.tags), f"run {run.run_id} config/tags")
        for record in instance.all_logs(run.run_id):
            events += 1
            hits += _hits(record.message or "", f"run {run.run_id} event message")
            hits += _hits(record.user_message or "", f"run {run.run_id} user message")
            if record.dagster_event is not None:
                hits += _hits(
                    repr(record.dagster_event), f"run {run.run_id} {record.dagster_event.event_type}"
                )
    return hits, events


@pytest.mark.timeout(120)
def test_whole_chain_leaks_no_key_anywhere(
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    matrix: object,
) -> None:
    from harvest_defs.rag.answer import answer
    from harvest_defs_tests.defs.conftest import write_corpus
    from harvest_defs_tests.reliability.conftest import record

    home = tmp_path / "home"
    corpus = write_corpus(tmp_path / "corpus")
    emulator.configure(valid_api_keys=[CLAUDE_KEY, VOYAGE_KEY])
    for name, value in {
        "ANTHROPIC_API_KEY": CLAUDE_KEY,
        "ANTHROPIC_BASE_URL": emulator.anthropic_base_url,
        "VOYAGE_API_KEY": VOYAGE_KEY,
        "VOYAGE_BASE_URL": emulator.voyage_base_url,
        "HARVEST_HOME": str(home),
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    defs = build_defs(corpus, sensor_interval=1)
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        register_collections(instance, corpus)
        materialize_selection(defs, instance, ["documents", "claude_summary_batches"], "alpha")
        tick = tick_sensor(defs, instance, "claude_batch_sensor", None)
        assert len(tick.run_requests) == 1
        run_requests(defs, instance, tick.run_requests)
        index_tick = tick_sensor(defs, instance, "rag_index_sensor", None)
        run_requests(defs, instance, index_tick.run_requests)
        result = answer("What do ducks eat?", k=2, rag_path=home / "rag.duckdb")
        assert result.text and result.sources
        assert emulator.stats().get("anthropic_401s", 0) == 0  # the canary keys really were used

        # forced auth failure: the server no longer accepts the keys
        emulator.configure(valid_api_keys=["sk-ant-other", "pa-other"])
        failed = materialize_selection(
            defs, instance, ["documents", "claude_summary_batches"], "beta", raise_on_error=False
        )
        assert not failed.success
        errors = [str(e.event_specific_data) for e in failed.all_events if e.is_failure]
        assert errors and any("401" in e or "authentication" in e.lower() for e in errors), errors
        run_hits, events = _scan_runs(instance)

    exceptions: list[str] = []
    import anthropic
    import openai

    from harvest_defs.harvest.claude import ClaudeBatchHarvester
    from harvest_defs.harvest.voyage import VoyageBatchHarvester

    claude = ClaudeBatchHarvester(
        CLAUDE_KEY, emulator.anthropic_base_url, ledger_path=tmp_path / "x.sqlite", raw_dir=tmp_path / "x"
    )
    with pytest.raises(anthropic.AuthenticationError) as claude_auth:
        claude.submit(["one more document"], model="claude-haiku-4-5", max_tokens=8)
    voyage = VoyageBatchHarvester(
        api_key=VOYAGE_KEY,
        base_url=emulator.voyage_base_url,
        ledger_path=tmp_path / "y.sqlite",
        raw_dir=tmp_path / "y",
    )
    with pytest.raises(openai.AuthenticationError) as voyage_auth:
        voyage.submit(["one more text"])
    for info in (claude_auth, voyage_auth):
        exceptions += [str(info.value), repr(info.value), info.getrepr(style="long").__str__()]
    exceptions += [repr(claude), repr(voyage), repr(voyage._creds)]

    log_lines = [r.getMessage() for r in caplog.records]
    hits = [h for line in log_lines for h in _hits(line, "log")]
    hits += run_hits
    hits += [h for text in exceptions for h in _hits(text, "exception/repr")]
    file_hits, n_files = _scan_files(home)
    hits += file_hits
    n_columns = 0
    for db in (home / "warehouse.duckdb", home / "rag.duckdb"):
        db_hits, columns = _scan_duckdb(db)
        hits += db_hits
        n_columns += columns
    assert n_files > 10 and events > 50 and n_columns > 10 and log_lines
    assert hits == []
    planted = tmp_path / "planted"  # the scanners do find a key where there is one
    planted.mkdir()
    (planted / "leak.txt").write_text(f"key={CLAUDE_KEY}")
    assert _scan_files(planted)[0] and _hits(f"x {VOYAGE_KEY}", "log")
    record(
        "secrets",
        "chain",
        "scan",
        f"0 hits in {len(log_lines)} log lines, {events} events, {n_files} files, {n_columns} text columns, "
        f"{len(exceptions)} exception/repr texts",
    )
