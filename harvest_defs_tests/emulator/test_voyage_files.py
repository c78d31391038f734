"""Voyage Files API through the openai SDK: upload, list (order/after/purpose), retrieve, content, delete."""

from __future__ import annotations

import httpx
import openai
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY


@pytest.fixture
def oa(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=0)


def test_upload_retrieve_content_delete(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    content = b'{"custom_id":"a","body":{"input":["alpha"]}}\n'
    uploaded = oa.files.create(file=("in.jsonl", content), purpose="batch")
    assert uploaded.id.startswith("file-")
    assert (uploaded.object, uploaded.purpose, uploaded.filename, uploaded.bytes) == (
        "file",
        "batch",
        "in.jsonl",
        len(content),
    )
    assert isinstance(uploaded.created_at, str)  # RFC 3339 string, as Voyage sends (openai is lenient)
    assert oa.files.retrieve(uploaded.id).bytes == len(content)
    assert oa.files.content(uploaded.id).content == content
    deleted = oa.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        oa.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        oa.files.delete(uploaded.id)
    assert emulator.stats()["voyage_files_uploaded"] == 1


def test_list_order_after_and_purpose(oa: openai.OpenAI) -> None:
    ids = [oa.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="batch").id for i in range(4)]
    assert [f.id for f in oa.files.list()] == ids[::-1]  # newest first by default
    assert [f.id for f in oa.files.list(order="asc", limit=3)] == ids  # pages followed via after
    page = oa.files.list(order="asc", limit=3)
    assert page.has_more is True
    assert [f.id for f in page.data] == ids[:3]
    assert [f.id for f in oa.files.list(purpose="batch-output")] == []


def test_upload_rejections(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oa.files.create(file=("x.jsonl", b"{}\n"), purpose="assistants")
    assert "purpose" in info.value.body["detail"]  # type: ignore[index]
    emulator.configure(voyage_file_max_bytes=100)
    with pytest.raises(openai.BadRequestError) as info:
        oa.files.create(file=("x.jsonl", b"x" * 101), purpose="batch")
    assert "larger than the maximum" in info.value.body["detail"]  # type: ignore[index]
    assert oa.files.create(file=("x.jsonl", b"x" * 100), purpose="batch").bytes == 100
    assert emulator.stats()["voyage_files_uploaded"] == 1


def test_bulk_delete_and_reset(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    ids = [oa.files.create(file=("f.jsonl", b"{}\n"), purpose="batch").id for _ in range(2)]

    def bulk_delete(file_ids: list[str]) -> dict[str, object]:
        response = httpx.post(
            f"{emulator.voyage_base_url}/files/delete",
            json={"file_ids": file_ids},
            headers={"Authorization": f"Bearer {TEST_VOYAGE_KEY}"},
        )
        assert response.status_code == 200
        return dict(response.json())

    # Documented shape {success, error_file_ids}, all or nothing: one unknown id deletes nothing.
    assert bulk_delete([*ids, "file-nope"]) == {"success": False, "error_file_ids": ["file-nope"]}
    assert [oa.files.retrieve(i).id for i in ids] == ids
    assert bulk_delete(ids) == {"success": True, "error_file_ids": []}
    for file_id in ids:
        with pytest.raises(openai.NotFoundError):
            oa.files.retrieve(file_id)
    kept = oa.files.create(file=("f.jsonl", b"{}\n"), purpose="batch").id
    emulator.reset()
    with pytest.raises(openai.NotFoundError):
        oa.files.retrieve(kept)
    assert list(oa.files.list()) == []
