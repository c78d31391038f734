"""Parsing real result files: every result type, the fixed schema, the prompt join, truncation checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from harvest_defs.harvest.claude import CLAUDE_MESSAGES_SCHEMA, prepare_prompts
from harvest_defs.harvest.claude.results import (
    complete_lines,
    invalid_rows,
    parse_results,
    parse_results_lines,
    read_manifest,
    write_manifest,
)

MODEL = "claude-haiku-4-5"


def _message(text: str) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2,
        },
    }


def test_parse_maps_every_result_type_and_joins_prompts(tmp_path: Path) -> None:
    prepared = prepare_prompts(
        [{"text": f"prompt {i}", "custom_id": f"c{i}"} for i in range(5)], MODEL, 50, None, None, 1 << 20
    )
    manifest_path = tmp_path / "m.parquet"
    write_manifest(manifest_path, prepared.requests)
    lines = [
        {"custom_id": "c3", "result": {"type": "succeeded", "message": _message("three")}},
        {
            "custom_id": "c1",
            "result": {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
            },
        },
        {"custom_id": "c0", "result": {"type": "expired"}},
        {"custom_id": "c2", "result": {"type": "canceled"}},
        {"custom_id": "c4", "result": {"type": "succeeded", "message": _message("four")}},
        {"custom_id": "stranger", "result": {"type": "succeeded", "message": _message("?")}},
    ]
    raw = tmp_path / "r.jsonl"
    raw.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    ended = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    unknown: list[str] = []
    chunks = list(
        parse_results(raw, read_manifest(manifest_path), "msgbatch_x", MODEL, ended, 4, unknown.append)
    )
    assert [c.table.num_rows for c in chunks] == [4, 2]
    assert all(c.table.schema == CLAUDE_MESSAGES_SCHEMA for c in chunks)
    rows = {r["custom_id"]: r for c in chunks for r in c.table.to_pylist()}
    assert unknown == ["stranger"]
    hashes = {r.custom_id: r.request_hash for r in prepared.requests}
    assert rows["c3"]["prompt"] == "prompt 3" and rows["c3"]["response"] == "three"
    assert rows["c3"]["request_hash"] == hashes["c3"] and rows["c3"]["success"] is True
    assert rows["c3"]["cache_read_input_tokens"] == 2 and rows["c3"]["stop_reason"] == "end_turn"
    assert rows["c3"]["created_at"] == ended and rows["c3"]["batch_id"] == "msgbatch_x"
    assert (rows["c1"]["error_type"], rows["c1"]["error"], rows["c1"]["success"]) == (
        "invalid_request_error",
        "bad",
        False,
    )
    assert rows["c0"]["error_type"] == "expired" and "24 h" in rows["c0"]["error"]
    assert rows["c2"]["error_type"] == "canceled" and rows["c2"]["result_type"] == "canceled"
    assert rows["stranger"]["prompt"] is None and rows["stranger"]["request_hash"] is None
    outcomes = dict(o for c in chunks for o in c.outcomes)
    assert outcomes == {
        hashes["c3"]: True,
        hashes["c1"]: False,
        hashes["c0"]: False,
        hashes["c2"]: False,
        hashes["c4"]: True,
    }


def test_complete_lines_detects_truncation(tmp_path: Path) -> None:
    whole = b'{"a":1}\n{"a":2}\n{"a":3}\n'
    path = tmp_path / "x.jsonl"
    path.write_bytes(whole)
    assert complete_lines(path) == 3
    path.write_bytes(whole[:-1])  # no final newline but whole JSON: still 3
    assert complete_lines(path) == 3
    path.write_bytes(whole[:-4])  # cut mid-line
    assert complete_lines(path) == 2


def test_invalid_rows_have_the_same_schema() -> None:
    prepared = prepare_prompts(["", {"text": "x", "custom_id": "bad id"}], MODEL, 5, None, None, 1 << 20)
    table = invalid_rows(prepared.invalid, MODEL)
    assert table.schema == CLAUDE_MESSAGES_SCHEMA
    assert table.column("error_type").to_pylist() == ["invalid_request", "invalid_request"]
    assert table.column("success").to_pylist() == [False, False]


def test_vectorized_and_per_line_parsers_agree(tmp_path: Path) -> None:
    prepared = prepare_prompts(
        [{"text": f"prompt {i}", "custom_id": f"c{i}"} for i in range(40)], MODEL, 50, None, None, 1 << 20
    )
    manifest_path = tmp_path / "m.parquet"
    write_manifest(manifest_path, prepared.requests)
    two_blocks = _message("a")
    two_blocks["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    empty = _message("")
    empty["content"] = []
    kinds = [
        {"type": "succeeded", "message": _message("ok")},
        {
            "type": "errored",
            "error": {"type": "error", "error": {"type": "overloaded_error", "message": "m"}},
        },
        {"type": "expired"},
        {"type": "canceled"},
        {"type": "succeeded", "message": empty},
        {"type": "mystery"},
    ]
    single = [{"custom_id": f"c{i}", "result": kinds[i % len(kinds)]} for i in range(39)]
    single.append({"custom_id": "nobody", "result": kinds[0]})
    ended = datetime(2026, 1, 2, tzinfo=UTC)
    manifest = read_manifest(manifest_path)
    for name, lines in (
        ("single", single),
        (
            "multi",
            [*single[:5], {"custom_id": "c39", "result": {"type": "succeeded", "message": two_blocks}}],
        ),
    ):
        raw = tmp_path / f"{name}.jsonl"
        raw.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
        fast = [c for c in parse_results(raw, manifest, "b", MODEL, ended, 7)]
        exact = [c for c in parse_results_lines(raw, manifest, "b", MODEL, ended, 7)]
        fast_rows = [r for c in fast for r in c.table.to_pylist()]
        assert fast_rows == [r for c in exact for r in c.table.to_pylist()], name
        assert [o for c in fast for o in c.outcomes] == [o for c in exact for o in c.outcomes]
    assert fast_rows[-1]["response"] == "ab"
