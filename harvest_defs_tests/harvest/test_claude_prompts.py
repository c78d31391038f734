"""Validation, deterministic ids and splitting: pure functions, checked on real inputs (no HTTP)."""

from __future__ import annotations

import itertools

import orjson
import pytest

from harvest_defs.harvest.claude import InvalidPromptsError, prepare_prompts, split_requests
from harvest_defs.harvest.claude.prompts import content_hash, generated_custom_id

MODEL = "claude-haiku-4-5"


def _prepare(prompts: list, **kw: object) -> object:
    args = {"max_tokens": 100, "system_prompt": None, "temperature": None, "max_bytes_per_batch": 1 << 20}
    args.update(kw)
    return prepare_prompts(prompts, MODEL, **args)  # type: ignore[arg-type]


def test_every_bad_prompt_is_named_once_and_the_rest_is_kept() -> None:
    prompts = [
        {"text": "fine", "custom_id": "ok_1"},
        {"text": "   ", "custom_id": "blank"},
        {"text": 42, "custom_id": "not_text"},
        {"text": "x", "custom_id": "has space"},
        {"text": "x", "custom_id": "a" * 65},
        {"text": "x", "custom_id": "dup"},
        {"text": "y", "custom_id": "dup"},
        {"text": "x", "custom_id": "opts", "colour": "red"},
        {"text": "x", "custom_id": "mt", "max_tokens": 0},
        {"text": "x", "custom_id": "temp", "temperature": 1.5},
        7,
        "a plain string prompt",
    ]
    prepared = _prepare(prompts)
    assert [r.custom_id for r in prepared.requests] == [
        "ok_1",
        generated_custom_id_for("a plain string prompt"),
    ]
    by_index = {item.index: item for item in prepared.invalid}
    assert sorted(by_index) == [1, 2, 3, 4, 5, 7, 8, 9, 10]
    assert "empty" in by_index[1].reason
    assert "text must be a string" in by_index[2].reason
    assert "custom_id must match" in by_index[3].reason and "custom_id must match" in by_index[4].reason
    assert "duplicate custom_id (prompts #5, #6)" in by_index[5].reason
    assert "colour" in by_index[7].reason
    assert "max_tokens" in by_index[8].reason
    assert "temperature" in by_index[9].reason
    assert "str or a mapping" in by_index[10].reason
    with pytest.raises(InvalidPromptsError) as excinfo:
        raise InvalidPromptsError(prepared.invalid)
    message = str(excinfo.value)
    for item in prepared.invalid:
        assert f"prompt #{item.index} " in message
    # one row per custom_id, even for a duplicated one
    ids = [item.custom_id for item in prepared.invalid]
    assert len(ids) == len(set(ids))


def generated_custom_id_for(text: str) -> str:
    params = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
    return generated_custom_id(content_hash(params))


def test_generated_ids_are_deterministic_and_identical_prompts_merge() -> None:
    first = _prepare(["same text", "other", "same text"])
    second = _prepare(["other", "same text"])
    assert first.duplicates_merged == 1
    assert {r.custom_id for r in first.requests} == {r.custom_id for r in second.requests}
    assert all(r.custom_id.startswith("req_") and len(r.custom_id) == 28 for r in first.requests)
    # a different option is a different request (and id)
    third = _prepare(["same text"], max_tokens=50)
    assert third.requests[0].custom_id not in {r.custom_id for r in first.requests}


def test_per_prompt_overrides_and_request_hash() -> None:
    prepared = _prepare(
        [
            {"text": "a", "custom_id": "a", "system": "be brief", "max_tokens": 7, "temperature": 0.2},
            {"text": "a", "custom_id": "b"},
        ],
        system_prompt="default system",
        temperature=0.5,
    )
    a, b = prepared.requests
    body_a = orjson.loads(a.body)
    assert body_a == {
        "custom_id": "a",
        "params": {
            "model": MODEL,
            "max_tokens": 7,
            "messages": [{"role": "user", "content": "a"}],
            "system": "be brief",
            "temperature": 0.2,
        },
    }
    assert orjson.loads(b.body)["params"]["system"] == "default system"
    # same text under another custom_id is another request: it needs its own row
    assert a.request_hash != b.request_hash
    again = _prepare([{"text": "a", "custom_id": "b"}], system_prompt="default system", temperature=0.5)
    assert again.requests[0].request_hash == b.request_hash


def test_a_request_over_the_byte_limit_is_invalid() -> None:
    prepared = _prepare(["x" * 5000, "small"], max_bytes_per_batch=2000)
    assert len(prepared.requests) == 1
    assert "over the batch limit" in prepared.invalid[0].reason


def test_split_by_count_and_by_bytes() -> None:
    requests = _prepare([f"prompt number {i} " + "w" * (i % 7) for i in range(250)]).requests
    by_count = split_requests(requests, 100, 1 << 30)
    assert [len(c) for c in by_count] == [100, 100, 50]
    limit = 5000
    by_bytes = split_requests(requests, 100_000, limit)
    assert sum(len(c) for c in by_bytes) == 250
    for chunk in by_bytes:
        body = b'{"requests":[' + b",".join(r.body for r in chunk) + b"]}"
        assert len(body) <= limit
    # greedy: each chunk but the last would overflow with the next request
    for chunk, following in itertools.pairwise(by_bytes):
        body = b'{"requests":[' + b",".join(r.body for r in [*chunk, following[0]]) + b"]}"
        assert len(body) > limit - 64
