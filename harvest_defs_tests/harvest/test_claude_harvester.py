"""End to end through the real anthropic SDK, the emulator, real dlt pipelines and DuckDB files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude import (
    CLAUDE_MESSAGES_SCHEMA,
    ClaudeBatchHarvester,
    InvalidPromptsError,
    claude_message_batches,
)
from harvest_defs.harvest.pipeline import create_duckdb_pipeline
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"


def _prompts(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"doc_{i}", "text": f"Summarize: Document {i} is about topic {i % 7}. It has details."}
        for i in range(start, start + n)
    ]


def _pipeline(tmp_path: Path, name: str = "claude_test") -> dlt.Pipeline:
    return create_duckdb_pipeline(
        name, "ai", destination_path=str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "pipes")
    )


def _run(pipeline: dlt.Pipeline, emulator: EmulatorServer, prompts: list[Any], **kw: Any) -> None:
    resource = claude_message_batches(
        prompts,
        model=MODEL,
        max_tokens=64,
        api_key=TEST_ANTHROPIC_KEY,
        base_url=emulator.anthropic_base_url,
        poll_interval=0.05,
        **kw,
    )
    pipeline.run(resource)


def _rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_250_prompts_make_3_batches_and_reruns_send_only_new_ones(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.configure(anthropic_batch_max_requests=100)
    pipeline = _pipeline(tmp_path)
    _run(pipeline, emulator, _prompts(250), max_requests_per_batch=100)
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] == 3
    assert stats["anthropic_batch_requests"] == 250
    count = "SELECT count(*), count(DISTINCT custom_id), count(*) FILTER (success) FROM ai.claude_messages"
    assert _rows(tmp_path, count) == [(250, 250, 250)]
    joined = _rows(
        tmp_path,
        "SELECT count(*) FROM ai.claude_messages WHERE prompt LIKE '%Document ' || "
        "split_part(custom_id, '_', 2) || ' is%' AND response LIKE 'Document%'",
    )
    assert joined == [(250,)]  # every result is matched to its own prompt

    _run(pipeline, emulator, _prompts(250), max_requests_per_batch=100)
    again = emulator.stats()
    assert again["anthropic_batches_created"] == 3 and again["anthropic_batch_requests"] == 250
    assert again["anthropic_http_requests"] == stats["anthropic_http_requests"]  # not one HTTP call
    assert _rows(tmp_path, count) == [(250, 250, 250)]

    _run(pipeline, emulator, _prompts(260), max_requests_per_batch=100)
    more = emulator.stats()
    assert more["anthropic_batch_requests"] == 260 and more["anthropic_batches_created"] == 4
    assert _rows(tmp_path, count) == [(260, 260, 260)]


def test_split_by_bytes_against_the_emulator_limit(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.configure(anthropic_batch_max_bytes=20_000)
    pipeline = _pipeline(tmp_path)
    _run(pipeline, emulator, _prompts(200), max_bytes_per_batch=20_000)
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] >= 2  # the emulator refused nothing (413 would raise)
    assert _rows(tmp_path, "SELECT count(DISTINCT custom_id) FROM ai.claude_messages") == [(200,)]


def test_non_blocking_submit_poll_collect_and_cache(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.configure(batch_processing_seconds=0.5)
    logs: list[str] = []
    harvester = ClaudeBatchHarvester(
        TEST_ANTHROPIC_KEY,
        emulator.anthropic_base_url,
        ledger_path=tmp_path / "ledger.sqlite",
        raw_dir=tmp_path / "raw",
        log=logs.append,
    )
    assert TEST_ANTHROPIC_KEY not in repr(harvester)
    report = harvester.submit(_prompts(30), MODEL, max_tokens=64, partition_key="p1")
    assert (report.requests_sent, report.requests_cached, len(report.batch_ids)) == (30, 0, 1)
    assert report.estimated_cost_usd > 0
    (batch_id,) = report.batch_ids
    assert [b.batch_id for b in harvester.ledger.in_flight("claude", "p1")] == [batch_id]
    first = harvester.poll(batch_id)
    assert first.processing_status == "in_progress" and not first.ended
    assert first.request_counts["processing"] == 30
    harvester.wait([batch_id], poll_interval=0.1, timeout=30)
    assert any("succeeded=30" in line for line in logs)
    # submitting again while the batch is uncollected resumes it instead of paying again
    resumed = harvester.submit(_prompts(30), MODEL, max_tokens=64, partition_key="p1")
    assert (resumed.requests_sent, resumed.requests_resumed, resumed.batch_ids) == (0, 30, [batch_id])
    tables = list(harvester.collect(batch_id))
    assert all(t.schema == CLAUDE_MESSAGES_SCHEMA for t in tables)
    assert sum(t.num_rows for t in tables) == 30
    assert (tmp_path / "raw" / "claude" / f"{batch_id}.jsonl").exists()
    harvester.mark_collected(batch_id)
    before = emulator.stats()["anthropic_http_requests"]
    cached = harvester.submit(_prompts(30), MODEL, max_tokens=64, partition_key="p1")
    assert (cached.requests_sent, cached.requests_cached, cached.batch_ids) == (0, 30, [])
    assert emulator.stats()["anthropic_http_requests"] == before
    # collecting again reads the raw file: no download
    downloads = emulator.stats()["anthropic_results_downloads"]
    assert sum(t.num_rows for t in harvester.collect(batch_id)) == 30
    assert emulator.stats()["anthropic_results_downloads"] == downloads


def test_api_faults_and_cut_downloads_are_survived(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.configure(
        fault_rate_500=0.2,
        fault_rate_529=0.2,
        fault_rate_drop=0.15,
        results_truncate_rate=0.5,
        fault_paths=["/v1/messages/batches"],
        anthropic_batch_max_requests=40,
    )
    pipeline = _pipeline(tmp_path)
    _run(pipeline, emulator, _prompts(120), max_requests_per_batch=40)
    stats = emulator.stats()
    assert stats["faults_500"] > 0 and stats["faults_529"] > 0, stats
    assert stats["anthropic_batches_created"] == 3
    assert _rows(tmp_path, "SELECT count(DISTINCT custom_id), count(*) FROM ai.claude_messages") == [
        (120, 120)
    ]


def test_errored_and_expired_become_rows_and_a_rerun_retries_only_them(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.configure(batch_errored_rate=0.2, batch_expired_rate=0.1)
    pipeline = _pipeline(tmp_path)
    _run(pipeline, emulator, _prompts(60))
    failed = _rows(
        tmp_path,
        "SELECT error_type, count(*) FROM ai.claude_messages WHERE NOT success GROUP BY 1 ORDER BY 1",
    )
    by_type = dict(failed)
    assert set(by_type) == {"api_error", "expired"}, failed
    assert _rows(tmp_path, "SELECT count(*) FROM ai.claude_messages WHERE NOT success AND error = ''") == [
        (0,)
    ]
    n_failed = sum(by_type.values())
    emulator.configure(batch_errored_rate=0.0, batch_expired_rate=0.0)
    sent_before = emulator.stats()["anthropic_batch_requests"]
    _run(pipeline, emulator, _prompts(60))
    assert emulator.stats()["anthropic_batch_requests"] - sent_before == n_failed
    assert _rows(tmp_path, "SELECT count(*), count(*) FILTER (success) FROM ai.claude_messages") == [(60, 60)]


def test_invalid_prompts_are_rows_and_strict_raises_before_any_http(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    bad = [*_prompts(5), {"text": " ", "custom_id": "blank"}, {"text": "x", "custom_id": "no good"}, 3]
    with pytest.raises(InvalidPromptsError) as excinfo:
        _run(_pipeline(tmp_path, "strict"), emulator, bad, strict=True)
    message = str(excinfo.value)
    assert "#5" in message and "#6" in message and "#7" in message
    assert emulator.stats().get("anthropic_http_requests", 0) == 0

    _run(_pipeline(tmp_path), emulator, bad)
    rows = dict(_rows(tmp_path, "SELECT custom_id, error_type FROM ai.claude_messages WHERE NOT success"))
    assert rows.pop("blank") == "invalid_request" and rows.pop("no good") == "invalid_request"
    assert list(rows.values()) == ["invalid_request"]  # the non-mapping prompt, under a generated id
    assert _rows(tmp_path, "SELECT count(*) FROM ai.claude_messages WHERE success") == [(5,)]
    assert emulator.stats()["anthropic_batch_requests"] == 5


def test_seed_quick_start_shape(
    api_env: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    from harvest_defs import claude_message_batches as public

    prompts = [
        {"text": "Summarize: The quick brown fox jumps over the lazy dog.", "custom_id": "doc_1"},
        {"text": "Translate to French: Hello world", "custom_id": "doc_2"},
    ]

    @dlt.source(name="claude_analysis")
    def analyze_documents() -> Any:
        return public(prompts=prompts, model="claude-3-5-haiku-20241022", max_tokens=1024)

    pipeline = dlt.pipeline(pipeline_name="claude_bulk", destination="duckdb", dataset_name="ai_analysis")
    load_info = pipeline.run(analyze_documents())
    assert not load_info.has_failed_jobs
    assert pipeline.last_trace.last_normalize_info.row_counts["claude_messages"] == 2
    with duckdb.connect(str(tmp_path / "claude_bulk.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT custom_id, success FROM ai_analysis.claude_messages ORDER BY 1").fetchall()
    assert rows == [("doc_1", True), ("doc_2", True)]
    assert (tmp_path / "dlt" / "pipelines" / "claude_bulk.harvest" / "ledger.sqlite").exists()


def test_api_key_from_dlt_secrets_and_never_in_errors(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anthropic

    from harvest_defs.harvest.claude.client import MissingApiKeyError, resolve_api_key

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.anthropic_base_url)
    with pytest.raises(MissingApiKeyError) as missing:
        resolve_api_key(None)
    assert "ANTHROPIC_API_KEY" in str(missing.value)

    emulator.configure(valid_api_keys=["sk-ant-from-dlt-secrets"])
    monkeypatch.setenv("SOURCES__CLAUDE__API_KEY", "sk-ant-from-dlt-secrets")
    harvester = ClaudeBatchHarvester(ledger_path=tmp_path / "l.sqlite", raw_dir=tmp_path / "raw")
    assert harvester.submit(_prompts(2), MODEL).requests_sent == 2

    monkeypatch.setenv("SOURCES__CLAUDE__API_KEY", "sk-ant-wrong-secret")
    wrong = ClaudeBatchHarvester(ledger_path=tmp_path / "l2.sqlite", raw_dir=tmp_path / "raw2")
    with pytest.raises(anthropic.AuthenticationError) as denied:
        wrong.submit(_prompts(2), MODEL)
    assert "sk-ant-wrong-secret" not in str(denied.value) and "sk-ant-wrong-secret" not in repr(wrong)


def test_one_row_per_custom_id_although_dlt_skips_its_staging_dedup(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The resource tells dlt its packages are deduplicated; identical bad prompts share one fallback id."""
    pipeline = _pipeline(tmp_path)
    _run(pipeline, emulator, [*_prompts(3), 7, 7, 7])
    table = pipeline.default_schema.get_table("claude_messages")
    assert table.get("x-stage-data-deduplicated") is True
    assert _rows(tmp_path, "SELECT count(*), count(DISTINCT custom_id) FROM ai.claude_messages") == [(4, 4)]
    _run(pipeline, emulator, [*_prompts(3), 7, 7, 7])  # the re-run merges: still one row each
    assert _rows(tmp_path, "SELECT count(*), count(DISTINCT custom_id) FROM ai.claude_messages") == [(4, 4)]
