"""Voyage rerank and contextualized chunk embeddings: real time (voyageai SDK) and Batch API (openai SDK)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import voyageai
import voyageai.error

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import count_tokens
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY

DOCS = [
    "Deploys run on Tuesdays after the change review.",
    "The on-call stipend is paid monthly to every engineer on the rotation.",
    "Expense reports are approved by managers within five days.",
    "Stipend questions go to the payroll team.",
]
QUERY = "When is the on-call stipend paid?"


@pytest.fixture
def vo(emulator: EmulatorServer) -> voyageai.Client:
    return voyageai.Client(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=0)


@pytest.fixture
def oa(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=0)


def raw(emulator: EmulatorServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{emulator.voyage_base_url}{path}", json=body, headers={"Authorization": f"Bearer {TEST_VOYAGE_KEY}"}
    )


def test_rerank_puts_the_passage_sharing_the_query_words_first(
    vo: voyageai.Client, emulator: EmulatorServer
) -> None:
    result = vo.rerank(QUERY, DOCS, model="rerank-2.5")
    order = [r.index for r in result.results]
    assert order[0] == 1  # shares "on-call", "stipend", "paid"
    assert order[1] == 3  # shares only "stipend"
    scores = [r.relevance_score for r in result.results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s < 1 for s in scores)
    query_tokens = count_tokens(QUERY)
    assert result.total_tokens == sum(query_tokens + count_tokens(d) for d in DOCS)  # documented formula
    assert vo.rerank(QUERY, DOCS, model="rerank-2.5").results == result.results  # deterministic
    assert emulator.stats()["voyage_rerank_calls"] == 2


def test_rerank_scores_each_pair_alone_and_rewards_covering_the_question_not_repeating_it(
    vo: voyageai.Client,
) -> None:
    """A cross-encoder scores (query, document) jointly (docs.voyageai.com/docs/reranker): a document's
    score must not move with the other candidates (BM25's request-wide idf did), and a passage that only
    repeats the question's entity must not beat the one that answers it (BM25's term frequency did)."""
    query = "How many days does the Orion service keep raw events?"
    intro = (
        "The Orion service. This handbook covers the Orion service and how the Orion service runs. "
        "The Orion service is owned by the Orion team."
    )
    answer = (
        "The Orion service handbook. Retention: raw events are kept for 28 days before they are purged, "
        "and older runbooks may still mention an earlier value."
    )
    other = "The Granite service handbook. Retention: raw events are kept for 67 days before they are purged."
    pair = vo.rerank(query, [intro, answer], model="rerank-2.5").results
    alone = {r.index: r.relevance_score for r in pair}
    crowd = vo.rerank(query, [intro, answer, other, other, other], model="rerank-2.5").results
    assert [r.index for r in crowd][:3] == [1, 2, 3]  # the answer first, its near-misses next, intro last
    assert {r.index: r.relevance_score for r in crowd if r.index < 2} == alone, "pairwise: no request idf"
    assert alone[1] > alone[0]


def test_rerank_wire_shape_top_k_and_return_documents(emulator: EmulatorServer) -> None:
    body = {
        "query": QUERY,
        "documents": DOCS,
        "model": "rerank-2.5-lite",
        "top_k": 2,
        "return_documents": True,
    }
    response = raw(emulator, "/rerank", body)
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "list" and payload["model"] == "rerank-2.5-lite"
    assert set(payload["usage"]) == {"total_tokens"}
    assert [set(row) for row in payload["data"]] == [{"relevance_score", "index", "document"}] * 2
    assert payload["data"][0]["document"] == DOCS[1]
    plain = raw(emulator, "/rerank", {**body, "return_documents": False, "top_k": None}).json()
    assert len(plain["data"]) == len(DOCS) and "document" not in plain["data"][0]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"model": "rerank-9"}, "Supported rerank models"),
        ({"documents": []}, "'documents' must be a non-empty list"),
        ({"documents": ["x"] * 1001}, "at most 1000"),
        ({"top_k": 0}, "'top_k' must be a positive integer"),
        ({"query": "q" * 4 * 8001, "truncation": False}, "more than the 8000 allowed"),
        ({"documents": ["d" * 4 * 32_000], "truncation": False}, "context length of 32000"),
    ],
)
def test_rerank_documented_limits(emulator: EmulatorServer, change: dict[str, Any], fragment: str) -> None:
    response = raw(emulator, "/rerank", {"query": QUERY, "documents": DOCS, "model": "rerank-2.5", **change})
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_rerank_truncation_and_total_token_limit(emulator: EmulatorServer) -> None:
    long_doc = "stipend " * 40_000  # 80k tokens: cut to fit 32K with the query
    ok = raw(emulator, "/rerank", {"query": QUERY, "documents": [long_doc], "model": "rerank-2.5"})
    assert ok.status_code == 200 and ok.json()["usage"]["total_tokens"] == 32_000
    many = raw(emulator, "/rerank", {"query": QUERY, "documents": [long_doc] * 20, "model": "rerank-2.5"})
    assert many.status_code == 400 and "600000" in many.json()["detail"]


def test_contextualized_embeddings_shape_and_context(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    inputs = [
        ["The stipend is paid monthly.", "It covers the on-call rotation."],
        ["Deploys run on Tuesdays."],
    ]
    result = vo.contextualized_embed(
        inputs, model="voyage-context-3", input_type="document", output_dimension=512
    )
    assert [len(r.embeddings) for r in result.results] == [2, 1]
    assert result.total_tokens == sum(count_tokens(c) for group in inputs for c in group)
    vectors = [np.asarray(v, dtype=np.float32) for v in result.results[0].embeddings]
    assert all(v.shape == (512,) and abs(float(np.linalg.norm(v)) - 1) < 1e-5 for v in vectors)
    # Chunks of one document share context: closer to each other than to another document's chunk.
    other = np.asarray(result.results[1].embeddings[0], dtype=np.float32)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ other)
    response = raw(emulator, "/contextualizedembeddings", {"inputs": inputs, "model": "voyage-context-3"})
    payload = response.json()
    assert payload["object"] == "list" and payload["data"][0]["object"] == "list"
    assert (
        payload["data"][0]["data"][1]["object"] == "embedding" and payload["data"][0]["data"][1]["index"] == 1
    )
    assert [d["index"] for d in payload["data"]] == [0, 1] and len(
        payload["data"][0]["data"][0]["embedding"]
    ) == 1024


def test_contextualized_embeddings_errors(vo: voyageai.Client) -> None:
    with pytest.raises(voyageai.error.InvalidRequestError, match="Supported contextualized"):
        vo.contextualized_embed([["x"]], model="voyage-3.5")
    with pytest.raises(voyageai.error.InvalidRequestError, match="output_dimension"):
        vo.contextualized_embed([["x"]], model="voyage-context-3", output_dimension=100)
    with pytest.raises(voyageai.error.InvalidRequestError, match="context length"):
        vo.contextualized_embed([["word " * 26_000]], model="voyage-context-3")


def _batch(oa: openai.OpenAI, endpoint: str, lines: list[dict[str, Any]], params: dict[str, Any]) -> Any:
    data = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    file_id = oa.files.create(file=("in.jsonl", data), purpose="batch").id
    created = oa.batches.create(
        input_file_id=file_id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="12h",  # type: ignore[arg-type]
        extra_body={"request_params": params},
    )
    assert created.endpoint == endpoint
    return oa.batches.retrieve(created.id)  # batch_processing_seconds=0: completed now


def test_rerank_batch_matches_real_time(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    lines = [{"custom_id": "q1", "body": {"query": QUERY, "documents": DOCS}}]
    batch = _batch(oa, "/v1/rerank", lines, {"model": "rerank-2.5", "top_k": 2})
    assert batch.status == "completed" and batch.model == "rerank-2.5"
    (line,) = [json.loads(x) for x in oa.files.content(batch.output_file_id).content.splitlines()]
    realtime = raw(
        emulator, "/rerank", {"query": QUERY, "documents": DOCS, "model": "rerank-2.5", "top_k": 2}
    )
    assert line["custom_id"] == "q1" and line["response"]["body"] == realtime.json()
    with pytest.raises(openai.BadRequestError) as info:
        _batch(oa, "/v1/rerank", lines, {"model": "rerank-2"})
    assert "not available in the Batch API" in info.value.body["detail"]  # type: ignore[index]


def test_contextualized_batch_matches_real_time(oa: openai.OpenAI, emulator: EmulatorServer) -> None:
    inputs = [["Chunk one of doc.", "Chunk two of doc."]]
    lines = [
        {"custom_id": "d1", "body": {"inputs": inputs}},
        {"custom_id": "bad", "body": {"inputs": "nope"}},
    ]
    failed = _batch(oa, "/v1/contextualizedembeddings", lines, {"model": "voyage-context-3"})
    assert failed.status == "failed" and failed.errors.data[0].line == 2
    batch = _batch(
        oa, "/v1/contextualizedembeddings", lines[:1], {"model": "voyage-context-3", "output_dimension": 256}
    )
    assert batch.status == "completed" and batch.request_counts.total == 1
    (line,) = [json.loads(x) for x in oa.files.content(batch.output_file_id).content.splitlines()]
    body = {"inputs": inputs, "model": "voyage-context-3", "output_dimension": 256}
    assert line["response"]["body"] == raw(emulator, "/contextualizedembeddings", body).json()
