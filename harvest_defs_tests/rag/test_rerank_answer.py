"""Passages + rerank in ``answer``: the answerer gets passages with their documents, cites both, and the
reranker (Voyage ``/v1/rerank`` on the emulator, through the voyageai SDK) orders the fused candidates."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import embed_text
from harvest_defs.rag.answer import answer, build_prompt, cited_ids
from harvest_defs.rag.chunking import chunk_document
from harvest_defs.rag.index import build_index, open_index
from harvest_defs.rag.rerank import voyage_reranker
from harvest_defs.rag.search import Hit, has_chunks, search
from harvest_defs_tests.rag.conftest import DIM, MODEL, corpus_documents, local_embedder

QUESTION = "How quickly must the primary on-call engineer acknowledge a page?"


def passage_rows() -> pa.Table:
    """Summary-style rows (one per document) plus every passage, as the rag_index asset writes them."""
    ids, docs, texts = [], [], []
    for doc_id, text in corpus_documents().items():
        ids.append(doc_id)
        docs.append(doc_id)
        texts.append(text)
        for chunk in chunk_document(doc_id, text, max_tokens=60, overlap_tokens=10):
            ids.append(chunk.chunk_id)
            docs.append(doc_id)
            texts.append(chunk.text)
    return pa.table(
        {
            "chunk_id": ids,
            "document_id": docs,
            "text": texts,
            "model": [MODEL] * len(ids),
            "text_hash": [None] * len(ids),
            "embedding": pa.array([embed_text(t, DIM) for t in texts], type=pa.list_(pa.float32(), DIM)),
        }
    )


@pytest.fixture(scope="module")
def passage_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("passages") / "rag.duckdb"
    build_index(passage_rows(), path)
    return path


def test_kind_filter_separates_passages_from_summaries(passage_index: Path) -> None:
    embed = local_embedder()
    chunks = search(QUESTION, k=5, filters={"kind": "chunk"}, rag_path=passage_index, embed_query=embed)
    summaries = search(QUESTION, k=5, filters={"kind": "summary"}, rag_path=passage_index, embed_query=embed)
    assert chunks and all(h.chunk_id.startswith(h.document_id + "--") for h in chunks)
    assert summaries and all(h.chunk_id == h.document_id for h in summaries)
    con = open_index(passage_index)
    try:
        assert has_chunks(con)
    finally:
        con.close()
    with pytest.raises(ValueError, match="kind"):
        search(QUESTION, filters={"kind": "page"}, rag_path=passage_index, embed_query=embed)


def test_answer_reranks_passages_and_cites_passage_and_document(
    passage_index: Path, api_env: EmulatorServer
) -> None:
    before = api_env.stats().get("voyage_rerank_calls", 0)
    result = answer(
        QUESTION,
        k=3,
        rag_path=passage_index,
        embed_query=local_embedder(),
        rerank=voyage_reranker(),
        candidates=20,
    )
    assert api_env.stats().get("voyage_rerank_calls", 0) - before == 1
    assert result.reranked and len(result.sources) == 3
    assert all(h.chunk_id != h.document_id for h in result.sources), "passages, not whole documents"
    scores = [h.score for h in result.sources]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)  # relevance scores
    assert "15 minutes" in result.text
    assert result.cited_chunks and result.cited_chunks[0] in {h.chunk_id for h in result.sources}
    assert result.cited_ids[0] == "on-call-policy"
    prompt = build_prompt(QUESTION, result.sources)
    assert f"[source {result.sources[0].chunk_id}] (document {result.sources[0].document_id}:" in prompt


def test_without_rerank_no_rerank_call_and_the_fused_order(
    passage_index: Path, api_env: EmulatorServer
) -> None:
    before = api_env.stats().get("voyage_rerank_calls", 0)
    result = answer(QUESTION, k=3, rag_path=passage_index, embed_query=local_embedder())
    assert api_env.stats().get("voyage_rerank_calls", 0) == before
    assert not result.reranked and all(h.chunk_id != h.document_id for h in result.sources)
    fused = search(
        QUESTION, k=3, filters={"kind": "chunk"}, rag_path=passage_index, embed_query=local_embedder()
    )
    assert [h.chunk_id for h in result.sources] == [h.chunk_id for h in fused]


def test_cited_ids_maps_passages_to_documents() -> None:
    hits = [Hit("doc-a--0123456789ab", "doc-a", "A > S\n\ntext", 1.0), Hit("doc-b", "doc-b", "summary", 0.5)]
    text = "Per [source doc-a--0123456789ab] and [doc-b], not [doc-zz--0123456789ab]."
    assert cited_ids(text, hits) == (["doc-a", "doc-b"], ["doc-a--0123456789ab"])
    assert "[source doc-a--0123456789ab] (document doc-a: A > S) text" in build_prompt("q?", hits)


def test_rerank_cache_pays_once_per_question_and_candidates(
    passage_index: Path, api_env: EmulatorServer, tmp_path: Path
) -> None:
    """rag_answers' reranker: the same question over the same candidates is answered from disk, in the
    same order and scores; other candidates (a grown index, an edited passage) are reranked again."""
    from harvest_defs.rag.rerank import RerankCache

    pool = search(
        QUESTION, k=20, filters={"kind": "chunk"}, rag_path=passage_index, embed_query=local_embedder()
    )
    cache = RerankCache(voyage_reranker(), tmp_path / "rerank", "rerank-2.5")
    before = api_env.stats().get("voyage_rerank_calls", 0)
    first = cache(QUESTION, pool, 3)
    again = RerankCache(voyage_reranker(), tmp_path / "rerank", "rerank-2.5")(QUESTION, pool, 3)
    assert api_env.stats().get("voyage_rerank_calls", 0) - before == 1
    assert [(h.chunk_id, h.score) for h in again] == [(h.chunk_id, h.score) for h in first]
    cache(QUESTION, pool[1:], 3)  # one candidate fewer: a different request
    assert (cache.calls, cache.hits) == (2, 0)
    assert api_env.stats().get("voyage_rerank_calls", 0) - before == 2


def test_cli_ask_reranks_by_default_cites_passage_and_document_and_no_rerank_turns_it_off(
    passage_index: Path, api_env: EmulatorServer
) -> None:
    """`harvest ask` over a passage index, the real CLI path (Voyage embeds the question, Voyage reranks,
    Claude answers, all over HTTP): passages with their documents, cited both ways; --no-rerank skips it."""
    import json

    from typer.testing import CliRunner

    from harvest_defs.cli import app

    def ask(*flags: str) -> dict[str, object]:
        args = ["ask", QUESTION, "--json", "--k", "3", "--index", str(passage_index), *flags]
        outcome = CliRunner().invoke(app, args)
        assert outcome.exit_code == 0, outcome.output
        result: dict[str, object] = json.loads(outcome.output)
        return result

    calls = api_env.stats().get("voyage_rerank_calls", 0)
    ranked = ask()
    assert api_env.stats().get("voyage_rerank_calls", 0) == calls + 1 and ranked["reranked"] is True
    sources = ranked["sources"]
    assert isinstance(sources, list) and len(sources) == 3
    assert all(s["chunk_id"].startswith(f"{s['document_id']}--") for s in sources), "passages"
    chunks, docs = ranked["cited_chunks"], ranked["cited_ids"]
    assert isinstance(chunks, list) and chunks and isinstance(docs, list)
    assert {c.split("--")[0] for c in chunks} <= set(docs) and docs[0] == "on-call-policy"
    assert "15 minutes" in str(ranked["answer"])

    plain = ask("--no-rerank")
    assert api_env.stats().get("voyage_rerank_calls", 0) == calls + 1, "--no-rerank sends no rerank"
    assert plain["reranked"] is False and plain["cited_chunks"]
    pretty = CliRunner().invoke(app, ["ask", QUESTION, "--k", "2", "--index", str(passage_index)])
    assert pretty.exit_code == 0 and "cited: on-call-policy (passages: on-call-policy--" in pretty.output
