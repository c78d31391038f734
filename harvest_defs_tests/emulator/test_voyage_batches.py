"""Voyage Batch API through the unmodified openai SDK as Voyage documents it: files → batch → output file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import openai
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import embed_text
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY

PARAMS = {"model": "voyage-3.5", "input_type": "document", "output_dimension": 512}


@pytest.fixture
def oa(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=0)


def jsonl(requests: Iterable[tuple[str, list[str]]]) -> bytes:
    lines = [json.dumps({"custom_id": cid, "body": {"input": texts}}) for cid, texts in requests]
    return ("\n".join(lines) + "\n").encode()


def upload(oa: openai.OpenAI, requests: Iterable[tuple[str, list[str]]]) -> str:
    return oa.files.create(file=("requests.jsonl", jsonl(requests)), purpose="batch").id


def create(oa: openai.OpenAI, file_id: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return oa.batches.create(
        input_file_id=file_id,
        endpoint="/v1/embeddings",
        completion_window="12h",  # type: ignore[arg-type]  # Voyage's only window; openai types say 24h
        extra_body={"request_params": params or PARAMS},
        **kwargs,
    )


def wait(oa: openai.OpenAI, batch_id: str, statuses: set[str], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = oa.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def lines_of(oa: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in oa.files.content(file_id).content.splitlines()]


def test_lifecycle_output_lines_and_metadata(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    requests = [
        ("doc-1", ["Expense reports are approved by managers.", "Deploys run on Tuesdays."]),
        ("doc-2", ["The on-call stipend is paid monthly."]),
        ("doc-3", ["HNSW indexes are built after loading."]),
    ]
    file_id = upload(oa, requests)
    created = create(oa, file_id, metadata={"request_set": "sha256:abc", "partition": "2025-01-01"})
    assert created.id.startswith("batch-")
    assert created.status == "validating"
    assert created.metadata == {"request_set": "sha256:abc", "partition": "2025-01-01"}
    assert created.input_file_id == file_id
    assert created.endpoint == "/v1/embeddings"
    assert created.output_file_id is None

    batch = oa.batches.retrieve(created.id)  # batch_processing_seconds=0: completed on next retrieve
    assert batch.status == "completed"
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        3,
        3,
        0,
    )
    assert batch.error_file_id is None
    assert batch.metadata == created.metadata
    assert all(isinstance(getattr(batch, k), str) for k in ("created_at", "in_progress_at", "completed_at"))

    out = lines_of(oa, batch.output_file_id)
    assert [line["custom_id"] for line in out] == ["doc-1", "doc-2", "doc-3"]
    for line, (_, texts) in zip(out, requests, strict=True):
        assert line["error"] is None
        assert line["batch_id"] == batch.id
        assert line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "list"
        assert body["model"] == "voyage-3.5"
        assert body["usage"]["total_tokens"] == sum(-(-len(t) // 4) for t in texts)
        assert [d["index"] for d in body["data"]] == list(range(len(texts)))
        for datum, text in zip(body["data"], texts, strict=True):
            # Plain JSON lists that round-trip to the exact float32 vectors the real-time route returns.
            assert np.array_equal(np.asarray(datum["embedding"], dtype=np.float32), embed_text(text, 512))
    meta = oa.files.retrieve(batch.output_file_id)
    assert meta.purpose == "batch-output"
    assert meta.bytes == len(oa.files.content(batch.output_file_id).content)

    stats = emulator.stats()
    assert stats["voyage_files_uploaded"] == 1
    assert stats["voyage_batches_created"] == 1
    assert stats["voyage_batch_inputs"] == 4
    assert stats["voyage_batch_tokens"] == sum(
        line["response"]["body"]["usage"]["total_tokens"] for line in out
    )
    assert "voyage_embed_calls" not in stats


def test_status_advances_with_processing_time(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.configure(batch_processing_seconds=1.5)
    batch = create(oa, upload(oa, [(f"r{i}", [f"text {i}"]) for i in range(50)]))
    order = ["validating", "in_progress", "finalizing", "completed"]
    seen = [batch.status]
    counts = []
    while seen[-1] != "completed":
        time.sleep(0.02)
        current = oa.batches.retrieve(batch.id)
        seen.append(current.status)
        counts.append(current.request_counts.completed)
    ranks = [order.index(s) for s in seen]
    assert ranks == sorted(ranks)  # never goes backwards
    assert seen[0] == "validating"
    assert counts == sorted(counts)
    assert counts[-1] == 50
    final = oa.batches.retrieve(batch.id)
    assert final.in_progress_at <= final.finalizing_at <= final.completed_at  # RFC 3339, same offset


def test_list_paginates_newest_first_and_keeps_metadata(oa: openai.OpenAI) -> None:
    file_id = upload(oa, [("a", ["alpha"])])
    ids = [create(oa, file_id, metadata={"n": str(i)}).id for i in range(5)]
    listed = list(oa.batches.list(limit=2))  # the SDK follows has_more/after
    assert [b.id for b in listed] == ids[::-1]
    assert [b.metadata for b in listed] == [{"n": str(i)} for i in reversed(range(5))]
    first_page = oa.batches.list(limit=2)
    assert first_page.has_more is True
    assert len(first_page.data) == 2


def test_cancel(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.configure(batch_processing_seconds=30)
    batch = create(oa, upload(oa, [("a", ["alpha"]), ("b", ["beta"])]))
    cancelling = oa.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    cancelled = wait(oa, batch.id, {"cancelled"})
    assert cancelled.status == "cancelled"
    assert cancelled.request_counts.completed == 0
    assert lines_of(oa, cancelled.output_file_id) == []  # nothing finished before the cancel
    with pytest.raises(openai.BadRequestError):
        oa.batches.cancel(batch.id)

    emulator.configure(batch_processing_seconds=0)
    done = create(oa, upload(oa, [("c", ["gamma"])]))
    assert wait(oa, done.id, {"completed"}).status == "completed"
    with pytest.raises(openai.BadRequestError):
        oa.batches.cancel(done.id)


def test_errored_and_expired_lines_go_to_the_error_file(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.configure(batch_errored_rate=0.3, batch_expired_rate=0.3)
    requests = [(f"req-{i}", [f"document number {i}"]) for i in range(60)]
    batch = wait(oa, create(oa, upload(oa, requests)).id, {"completed"})
    counts = batch.request_counts
    assert counts.total == 60
    assert counts.completed + counts.failed == 60
    assert 0 < counts.failed < 60
    out = lines_of(oa, batch.output_file_id)
    errors = lines_of(oa, batch.error_file_id)
    assert len(out) == counts.completed
    assert len(errors) == counts.failed
    assert sorted(line["custom_id"] for line in out + errors) == sorted(cid for cid, _ in requests)
    assert all(line["response"]["status_code"] == 200 for line in out)
    errored = [line for line in errors if line["response"] is not None]
    expired = [line for line in errors if line["response"] is None]
    assert errored
    assert expired
    assert all(
        line["response"] == {"status_code": 500, "message": "Internal Server Error"} for line in errored
    )
    assert all(line["error"] is None for line in errored)
    assert all(line["error"]["code"] == "batch_expired" for line in expired)
    assert oa.files.retrieve(batch.error_file_id).purpose == "batch-error"

    # Seeded: the same config and request order after a reset gives the same outcome per line.
    emulator.reset()
    again = wait(oa, create(oa, upload(oa, requests)).id, {"completed"})
    assert sorted(line["custom_id"] for line in lines_of(oa, again.error_file_id)) == sorted(
        line["custom_id"] for line in errors
    )


def test_bad_content_fails_validation_with_line_errors(oa: openai.OpenAI) -> None:
    content = b"\n".join(
        [
            json.dumps({"custom_id": "a", "body": {"input": ["fine"]}}).encode(),
            b"{not json",
            json.dumps({"custom_id": "a", "body": {"input": ["duplicate id"]}}).encode(),
            json.dumps({"custom_id": "c", "body": {"input": ["ok", ""]}}).encode(),
            json.dumps({"body": {"input": ["no id"]}}).encode(),
        ]
    )
    file_id = oa.files.create(file=("bad.jsonl", content), purpose="batch").id
    batch = wait(oa, create(oa, file_id).id, {"failed"})
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.output_file_id is None
    assert batch.errors is not None
    by_line = {e.line: e.code for e in batch.errors.data}
    assert by_line == {
        2: "invalid_json_line",
        3: "duplicate_custom_id",
        4: "invalid_request",
        5: "invalid_request",
    }


def test_batch_input_limits(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.configure(voyage_batch_max_inputs=5)
    batch = wait(oa, create(oa, upload(oa, [("a", ["1", "2", "3"]), ("b", ["4", "5", "6"])])).id, {"failed"})
    assert [e.code for e in batch.errors.data] == ["too_many_inputs"]

    emulator.configure(voyage_batch_max_inputs=100_000, voyage_max_inputs=2)
    batch = wait(oa, create(oa, upload(oa, [("a", ["1", "2", "3"])])).id, {"failed"})
    assert batch.errors.data[0].line == 1

    emulator.configure(voyage_max_inputs=1000)
    over_context = [("big", ["word " * 80_000])]  # 100K tokens, > 32K context and truncation=False
    params = {**PARAMS, "truncation": False}
    batch = wait(oa, create(oa, upload(oa, over_context), params=params).id, {"failed"})
    assert "context length" in batch.errors.data[0].message
    truncated = wait(oa, create(oa, upload(oa, over_context)).id, {"completed"})
    out = lines_of(oa, truncated.output_file_id)
    assert out[0]["response"]["body"]["usage"]["total_tokens"] == 32_000


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"extra_body": {"request_params": {"model": "voyage-99"}}}, "not supported"),
        ({"extra_body": {"request_params": {"model": "voyage-law-2"}}}, "Batch API"),
        ({"extra_body": {"request_params": {**PARAMS, "output_dimension": 100}}}, "output_dimension"),
        ({"extra_body": {}}, "request_params"),
        ({"completion_window": "24h"}, "completion_window"),
        ({"endpoint": "/v1/chat/completions"}, "endpoint"),
        ({"input_file_id": "file-missing"}, "not found"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ],
)
def test_create_rejects_bad_requests(oa: openai.OpenAI, change: dict[str, Any], match: str) -> None:
    kwargs: dict[str, Any] = {
        "input_file_id": upload(oa, [("a", ["alpha"])]),
        "endpoint": "/v1/embeddings",
        "completion_window": "12h",
        "extra_body": {"request_params": PARAMS},
        **change,
    }
    with pytest.raises(openai.BadRequestError) as info:
        oa.batches.create(**kwargs)
    # openai puts only "Error code: 400" in the message; Voyage's {"detail": ...} is the body.
    assert isinstance(info.value.body, dict)
    assert match in info.value.body["detail"]


def test_unknown_batch_is_404_and_bad_key_is_401(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    with pytest.raises(openai.NotFoundError):
        oa.batches.retrieve("batch-doesnotexist")
    emulator.configure(valid_api_keys=["pa-only"])
    with pytest.raises(openai.AuthenticationError):
        oa.batches.list().data  # noqa: B018
    assert emulator.stats()["voyage_401s"] == 1


def test_output_survives_deleting_the_input_file(oa: openai.OpenAI) -> None:
    file_id = upload(oa, [("a", ["alpha beta"])])
    batch = create(oa, file_id)
    assert oa.files.delete(file_id).deleted is True
    done = wait(oa, batch.id, {"completed"})
    assert [line["custom_id"] for line in lines_of(oa, done.output_file_id)] == ["a"]


def test_twenty_thousand_inputs(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    """A 20k-input batch: 2,000 lines of 10 texts (output written lazily on the first download)."""
    requests = [(f"r{i}", [f"text {i} part {j}" for j in range(10)]) for i in range(2000)]
    params = {**PARAMS, "output_dimension": 256}
    batch = wait(oa, create(oa, upload(oa, requests), params=params).id, {"completed"})
    assert batch.request_counts.completed == 2000
    out = lines_of(oa, batch.output_file_id)
    assert len(out) == 2000
    assert sum(len(line["response"]["body"]["data"]) for line in out) == 20_000
    last = out[-1]["response"]["body"]["data"][-1]["embedding"]
    assert np.array_equal(np.asarray(last, dtype=np.float32), embed_text("text 1999 part 9", 256))
    assert emulator.stats()["voyage_batch_inputs"] == 20_000


def test_results_download_cut_mid_stream(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    requests = [(f"r{i}", [f"text number {i}"]) for i in range(20)]
    batch = wait(oa, create(oa, upload(oa, requests)).id, {"completed"})
    full = oa.files.content(batch.output_file_id).content
    emulator.configure(results_truncate_rate=1.0)
    with pytest.raises(openai.APIConnectionError):
        oa.files.content(batch.output_file_id).read()
    emulator.configure(results_truncate_rate=0.0)
    assert oa.files.content(batch.output_file_id).content == full  # a retry gets the whole file
    stats = emulator.stats()
    assert stats["voyage_results_truncated"] == 1
    assert stats["voyage_results_downloads"] == 3


def test_fault_injection_on_batch_endpoints(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    file_id = upload(oa, [("a", ["alpha"])])
    emulator.configure(fault_rate_500=1.0, fault_paths=["POST /v1/batches"])
    with pytest.raises(openai.InternalServerError):
        create(oa, file_id)
    assert emulator.stats().get("voyage_batches_created", 0) == 0
    assert oa.files.retrieve(file_id).id == file_id  # other paths unaffected
    emulator.configure(fault_rate_500=0.0, fault_rate_529=1.0)
    with pytest.raises(openai.InternalServerError) as info:
        create(oa, file_id)
    assert info.value.status_code == 503
    emulator.configure(fault_rate_529=0.0, voyage_rpm=1)
    create(oa, file_id)
    with pytest.raises(openai.RateLimitError):
        create(oa, file_id)
    assert emulator.stats()["voyage_batches_created"] == 1
