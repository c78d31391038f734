"""Message Batches through the real anthropic SDK (strict response validation): lifecycle, errors, faults."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import httpx
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.anthropic_wire import message_body
from harvest_defs.emulator.content import count_tokens, summarize

MODEL = "claude-haiku-4-5"
RAW_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}  # the API requires the version header


def client(emulator: EmulatorServer, key: str = "sk-ant-test", retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key,
        base_url=emulator.anthropic_base_url,
        _strict_response_validation=True,
        max_retries=retries,
    )


def prompt(i: int) -> str:
    return (
        f"Summarize:\n\nDocument {i} is about batches. It has a second sentence. And a third one. Not this."
    )


def requests_for(n: int, model: str = MODEL, max_tokens: int = 100, prefix: str = "req") -> list[Any]:
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "params": {
                "model": model,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": prompt(i)}],
            },
        }
        for i in range(n)
    ]


def results_by_id(api: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    return {line.custom_id: line.result for line in api.messages.batches.results(batch_id)}


def test_create_retrieve_results_delete(emulator: EmulatorServer) -> None:
    api = client(emulator)
    created = api.messages.batches.create(requests=requests_for(3))
    assert created.id.startswith("msgbatch_01") and created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.request_counts.model_dump() == {
        "processing": 3,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert created.ended_at is None and created.results_url is None and created.archived_at is None
    assert (created.expires_at - created.created_at).total_seconds() == 24 * 3600
    assert created._request_id is not None

    ended = api.messages.batches.retrieve(created.id)  # batch_processing_seconds=0: ends on this retrieve
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 3 and ended.request_counts.processing == 0
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at
    assert ended.results_url == f"{emulator.anthropic_base_url}/v1/messages/batches/{created.id}/results"

    results = results_by_id(api, created.id)
    assert set(results) == {"req-0", "req-1", "req-2"}
    for i in range(3):
        result = results[f"req-{i}"]
        assert result.type == "succeeded"
        text, stop = summarize(prompt(i), 100)
        assert result.message.content[0].text == text
        assert result.message.stop_reason == stop == "end_turn"
        assert result.message.usage.input_tokens == count_tokens(prompt(i))
        assert result.message.usage.output_tokens == count_tokens(text)
        assert result.message.usage.service_tier == "batch"
    # Downloads are repeatable byte for byte (same message ids too).
    again = results_by_id(api, created.id)
    assert again["req-1"].message.id == results["req-1"].message.id

    deleted = api.messages.batches.delete(created.id)
    assert deleted.id == created.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        api.messages.batches.retrieve(created.id)
    with pytest.raises(anthropic.NotFoundError):
        api.messages.batches.delete(created.id)
    with pytest.raises(anthropic.NotFoundError) as info:
        api.messages.batches.retrieve("msgbatch_doesnotexist")
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_list_newest_first_and_paginates_both_ways(emulator: EmulatorServer) -> None:
    api = client(emulator)
    ids = [api.messages.batches.create(requests=requests_for(1)).id for _ in range(5)]
    newest_first = ids[::-1]

    first_page = api.messages.batches.list(limit=2)
    assert [b.id for b in first_page.data] == newest_first[:2]
    assert first_page.has_more is True
    assert first_page.first_id == newest_first[0] and first_page.last_id == newest_first[1]
    # SDK auto-pagination follows after_id=last_id until has_more is false.
    assert [b.id for b in api.messages.batches.list(limit=2)] == newest_first
    assert [b.id for b in api.messages.batches.list()] == newest_first  # default limit 20

    after = api.messages.batches.list(limit=2, after_id=newest_first[1])
    assert [b.id for b in after.data] == newest_first[2:4] and after.has_more is True
    last = api.messages.batches.list(limit=2, after_id=newest_first[3])
    assert [b.id for b in last.data] == newest_first[4:] and last.has_more is False

    before = api.messages.batches.list(limit=2, before_id=newest_first[4])
    assert [b.id for b in before.data] == newest_first[2:4] and before.has_more is True
    # Auto-pagination from before_id walks towards newer batches with before_id=first_id.
    walked = [
        b.id
        for page in api.messages.batches.list(limit=2, before_id=newest_first[4]).iter_pages()
        for b in page.data
    ]
    assert walked == newest_first[2:4] + newest_first[0:2]

    # Listing also advances the lifecycle (processing time 0 → ended).
    assert {b.processing_status for b in api.messages.batches.list(limit=5).data} == {"ended"}
    # A deleted batch still works as a cursor.
    api.messages.batches.delete(newest_first[1])
    assert [b.id for b in api.messages.batches.list(limit=2, after_id=newest_first[1]).data] == newest_first[
        2:4
    ]

    empty = api.messages.batches.list(limit=2, before_id=newest_first[0])
    assert empty.data == [] and empty.has_more is False and empty.first_id is None
    for bad in (0, 1001):
        with pytest.raises(anthropic.BadRequestError):
            api.messages.batches.list(limit=bad)


def test_processing_time_keeps_batch_in_progress_until_it_ends(emulator: EmulatorServer) -> None:
    emulator.configure(batch_processing_seconds=3600)
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(4))
    still = api.messages.batches.retrieve(batch.id)
    assert still.processing_status == "in_progress"
    assert still.request_counts.processing == 4 and still.request_counts.succeeded == 0
    assert still.results_url is None
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        list(api.messages.batches.results(batch.id))
    with pytest.raises(anthropic.BadRequestError):  # only ended batches can be deleted
        api.messages.batches.delete(batch.id)
    raw = httpx.get(
        f"{emulator.anthropic_base_url}/v1/messages/batches/{batch.id}/results", headers=RAW_HEADERS
    )
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic_input_tokens" not in emulator.stats()  # nothing billed before the end

    emulator.configure(batch_processing_seconds=0.2)  # the live config decides: due 0.2 s after created_at
    time.sleep(0.3)
    ended = api.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == 4
    assert ended.ended_at is not None
    assert abs((ended.ended_at - ended.created_at).total_seconds() - 0.2) < 1e-3


def test_cancel_before_any_processing_cancels_everything(emulator: EmulatorServer) -> None:
    emulator.configure(batch_processing_seconds=3600)
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(5))
    canceling = api.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None and canceling.results_url is None
    assert canceling.request_counts.processing == 5

    ended = api.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 5 and ended.request_counts.succeeded == 0
    assert {r.type for r in results_by_id(api, batch.id).values()} == {"canceled"}
    assert emulator.stats().get("anthropic_output_tokens", 0) == 0  # canceled requests are not billed
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        api.messages.batches.cancel(batch.id)
    assert api.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        api.messages.batches.cancel("msgbatch_missing")


def test_cancel_midway_keeps_processed_requests(emulator: EmulatorServer) -> None:
    """Requests processed before the cancel keep their results; the rest are canceled."""
    emulator.configure(batch_processing_seconds=3600)
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(100))
    time.sleep(1.0)
    elapsed = time.time() - batch.created_at.timestamp()
    emulator.configure(batch_processing_seconds=4 * elapsed)  # about a quarter done now
    api.messages.batches.cancel(batch.id)
    counts = api.messages.batches.retrieve(batch.id).request_counts
    assert counts.succeeded + counts.canceled == 100
    assert 25 <= counts.succeeded < 100 and counts.canceled > 0
    results = results_by_id(api, batch.id)
    assert sum(r.type == "succeeded" for r in results.values()) == counts.succeeded


def test_create_rejects_bad_custom_ids_and_params(emulator: EmulatorServer) -> None:
    api = client(emulator)
    good = requests_for(2)
    cases: list[tuple[list[Any], str]] = [
        ([], "at least one request"),
        ([*good, {**good[0], "custom_id": "has space"}], "'has space'"),
        ([*good, {**good[0], "custom_id": "x" * 65}], "x" * 65),
        ([*good, {**good[0], "custom_id": ""}], "requests.2.custom_id"),
        ([*good, dict(good[0])], "duplicate custom_id 'req-0'"),
        (
            [*good, {"custom_id": "no-max", "params": {"model": MODEL, "messages": []}}],
            "max_tokens: Field required",
        ),
        (
            [*good, {"custom_id": "no-msgs", "params": {"model": MODEL, "max_tokens": 5}}],
            "messages: Field required",
        ),
        ([*good, {"custom_id": "no-params"}], "params: Field required"),
        ([*good, {**good[0], "custom_id": "t", "extra": 1}], "extra"),
    ]
    for requests, fragment in cases:
        with pytest.raises(anthropic.BadRequestError) as info:
            api.messages.batches.create(requests=requests)
        assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert fragment in info.value.message, (fragment, info.value.message)
    # Every bad request is named, not only the first.
    with pytest.raises(anthropic.BadRequestError) as many:
        api.messages.batches.create(
            requests=[*good, {**good[0], "custom_id": "a b"}, {**good[1], "custom_id": "c d"}]
        )
    assert "'a b'" in many.value.message and "'c d'" in many.value.message
    assert emulator.stats().get("anthropic_batches_created", 0) == 0


def test_size_limits_are_413(emulator: EmulatorServer) -> None:
    emulator.configure(anthropic_batch_max_requests=10)
    api = client(emulator)
    assert api.messages.batches.create(requests=requests_for(10)).request_counts.processing == 10
    with pytest.raises(anthropic.APIStatusError) as too_many:
        api.messages.batches.create(requests=requests_for(11))
    assert too_many.value.status_code == 413
    assert too_many.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    emulator.configure(anthropic_batch_max_bytes=2000)
    with pytest.raises(anthropic.APIStatusError) as too_big:
        api.messages.batches.create(requests=requests_for(10))
    assert too_big.value.status_code == 413
    assert emulator.stats()["anthropic_batches_created"] == 1


def test_unknown_model_and_too_many_tokens_become_errored_results(emulator: EmulatorServer) -> None:
    api = client(emulator)
    requests = [
        *requests_for(2),
        *requests_for(1, model="claude-nonexistent-9", prefix="badmodel"),
        *requests_for(1, model="claude-3-haiku-20240307", max_tokens=9999, prefix="toolong"),
    ]
    batch = api.messages.batches.create(requests=requests)
    counts = api.messages.batches.retrieve(batch.id).request_counts
    assert (counts.succeeded, counts.errored) == (2, 2)
    results = results_by_id(api, batch.id)
    bad = results["badmodel-0"]
    assert bad.type == "errored" and bad.error.type == "error"
    assert (
        bad.error.error.type == "not_found_error" and bad.error.error.message == "model: claude-nonexistent-9"
    )
    assert results["toolong-0"].error.error.type == "invalid_request_error"
    # Only succeeded requests are billed.
    assert emulator.stats()["anthropic_input_tokens"] == count_tokens(prompt(0)) + count_tokens(prompt(1))


def test_errored_and_expired_rates_are_seeded(emulator: EmulatorServer) -> None:
    emulator.configure(batch_errored_rate=0.2, batch_expired_rate=0.1)
    api = client(emulator)

    def outcome_pattern() -> dict[str, str]:
        batch = api.messages.batches.create(requests=requests_for(1000))
        counts = api.messages.batches.retrieve(batch.id).request_counts
        assert counts.succeeded + counts.errored + counts.expired == 1000
        assert 150 <= counts.errored <= 250 and 60 <= counts.expired <= 140
        results = results_by_id(api, batch.id)
        assert sum(r.type == "errored" for r in results.values()) == counts.errored
        errored = next(r for r in results.values() if r.type == "errored")
        assert errored.error.error.type == "api_error"
        return {custom_id: r.type for custom_id, r in results.items()}

    first = outcome_pattern()
    emulator.reset()
    assert outcome_pattern() == first  # same seed, same requests: same outcomes
    assert emulator.stats()["anthropic_batch_expired"] == sum(t == "expired" for t in first.values())


def test_archived_results_are_gone(emulator: EmulatorServer) -> None:
    emulator.configure(results_archive_seconds=3600)
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(2))
    ended = api.messages.batches.retrieve(batch.id)
    assert ended.results_url is not None and ended.archived_at is None
    emulator.configure(results_archive_seconds=0)
    archived = api.messages.batches.retrieve(batch.id)
    assert archived.archived_at == archived.ended_at and archived.results_url is None
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        list(api.messages.batches.results(batch.id))
    raw = httpx.get(ended.results_url, headers=RAW_HEADERS)
    assert raw.status_code == 404 and raw.json()["error"]["type"] == "not_found_error"


def test_truncated_download_drops_mid_line_then_recovers(emulator: EmulatorServer) -> None:
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(10))
    url = api.messages.batches.retrieve(batch.id).results_url
    assert url is not None
    emulator.configure(results_truncate_rate=1.0)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", url, headers=RAW_HEADERS) as r:
        for chunk in r.iter_bytes():
            received += chunk
    assert received.count(b"\n") == 5 and not received.endswith(b"\n")  # cut halfway through line 6
    emulator.configure(results_truncate_rate=0.0)
    assert len(results_by_id(api, batch.id)) == 10
    stats = emulator.stats()
    assert stats["anthropic_results_downloads"] == 2 and stats["anthropic_results_truncated"] == 1


def test_batch_endpoints_pass_the_admission_gate(emulator: EmulatorServer) -> None:
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(1))
    emulator.configure(valid_api_keys=["sk-ant-good"])
    with pytest.raises(anthropic.AuthenticationError):
        client(emulator, key="sk-ant-bad").messages.batches.retrieve(batch.id)
    emulator.configure(valid_api_keys=None, fault_rate_529=1.0, fault_paths=["/v1/messages/batches"])
    with pytest.raises(anthropic.OverloadedError):
        api.messages.batches.list()
    emulator.configure(fault_rate_529=0.0, fault_rate_500=1.0)
    with pytest.raises(anthropic.InternalServerError):
        api.messages.batches.create(requests=requests_for(1))
    emulator.configure(fault_rate_500=0.0, anthropic_rpm=1)
    api.messages.batches.retrieve(batch.id)  # the one request of this minute
    with pytest.raises(anthropic.RateLimitError) as info:
        api.messages.batches.retrieve(batch.id)
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert emulator.stats()["anthropic_batches_created"] == 1


def test_two_thousand_request_round_trip_bills_once(emulator: EmulatorServer) -> None:
    n = 2000
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests_for(n))
    ended = api.messages.batches.retrieve(batch.id)
    assert ended.request_counts.succeeded == n
    results = results_by_id(api, batch.id)
    assert len(results) == n
    assert all(
        results[f"req-{i}"].message.content[0].text == summarize(prompt(i), 100)[0] for i in range(0, n, 97)
    )
    results_by_id(api, batch.id)  # a second download is not billed again
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] == 1 and stats["anthropic_batch_requests"] == n
    assert stats["anthropic_batch_succeeded"] == n
    assert stats["anthropic_input_tokens"] == sum(count_tokens(prompt(i)) for i in range(n))
    assert stats["anthropic_output_tokens"] == sum(r.message.usage.output_tokens for r in results.values())
    assert stats["anthropic_results_downloads"] == 2


def test_raw_result_lines_match_the_message_shape(emulator: EmulatorServer) -> None:
    """The templated JSONL line is the same JSON as the real-time Message body (plus batch tier)."""
    api = client(emulator)
    tricky = 'Quotes " and \\ backslashes, unicode é 日本, tab\there. Second.'
    batch = api.messages.batches.create(
        requests=[
            {
                "custom_id": "t",
                "params": {
                    "model": MODEL,
                    "max_tokens": 50,
                    "messages": [{"role": "user", "content": tricky}],
                },
            }
        ]
    )
    url = api.messages.batches.retrieve(batch.id).results_url
    assert url is not None
    raw = httpx.get(url, headers=RAW_HEADERS)
    assert raw.status_code == 200 and raw.headers["request-id"].startswith("req_")
    assert raw.content.endswith(b"\n") and raw.content.count(b"\n") == 1
    line = json.loads(raw.content)
    text, stop = summarize(tricky, 50)
    message = line["result"]["message"]
    assert line == {"custom_id": "t", "result": {"type": "succeeded", "message": message}}
    assert message == message_body(
        message["id"], MODEL, text, stop, count_tokens(tricky), count_tokens(text), "batch"
    )
    assert message["id"].startswith("msg_01")
