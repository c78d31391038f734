"""The retrieval eval, small: the mechanics it reports hold on 6 long documents / 24 questions (emulator).

What it proves (not model quality — the emulator's embeddings are lexical): a whole-document summary
finds the document but shows the answerer only its first 4,000 characters; passages make the answer
retrievable; the situating context (the emulator writes the document's opening sentences) puts the
service's name on every passage; the reranker is called once per question; contexts read the cache.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.rag.eval_corpus import NAMES, generate
from harvest_defs.rag.eval_run import run_eval


def test_corpus_is_deterministic_and_each_answer_is_one_passage() -> None:
    docs, questions = generate(30, 4)
    assert (docs, questions) == generate(30, 4) and len(questions) >= 100
    by_id = {d.document_id: d for d in docs}
    for q in questions:
        assert by_id[q.document_id].text.count(q.answer) == 1
        (name,) = [n for n in NAMES if f"the {n} service" in q.question]
        intro, _, sections = by_id[q.document_id].text.partition("\n## ")
        assert name in intro and name not in sections  # only the opening names the service
    assert min(len(d.text) for d in docs) > 4000 * 1.5  # longer than what a summary row shows


def test_small_eval_against_the_emulator(tmp_path: Path, api_env: EmulatorServer) -> None:
    docs, questions = generate(6, 4)
    before = api_env.stats()
    results = run_eval(docs, questions, tmp_path, log=lambda _: None)
    stats = api_env.stats()
    methods = results["methods"]
    assert results["questions"] == 24 and results["passages"] > 6 * 8
    assert methods["document_summaries (document found)"]["recall@5"] == 1.0
    assert methods["document_summaries"]["recall@5"] < 1.0  # the passage is past the shown window
    assert methods["chunks_contextual"]["recall@5"] > methods["chunks"]["recall@5"]
    assert methods["chunks_contextual"]["recall@5"] >= 0.9
    # The reranker reorders the fused candidates without losing the answer or pushing it down (it scores
    # each passage against the question alone; the BM25 it replaced ranked the service's intro first).
    reranked = methods["chunks_contextual + rerank"]
    assert reranked["recall@5"] >= methods["chunks_contextual"]["recall@5"]
    assert reranked["mrr@10"] >= methods["chunks_contextual"]["mrr@10"]
    rerank_calls = stats.get("voyage_rerank_calls", 0) - before.get("voyage_rerank_calls", 0)
    assert rerank_calls == 2 * len(questions)  # chunks + rerank, contextual + rerank
    cost = results["contextual_cost"]
    assert cost["context_requests_sent"] == results["passages"]
    assert cost["context_cache_read_input_tokens"] > 0 and cost["context_cache_saving_usd"] > 0


def test_real_apis_mode_refuses_a_local_base_url_and_missing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--real-apis` must never label emulator numbers "real": a base URL on loopback stops it, as do
    missing keys; real keys with no base URL (or a remote proxy) pass."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "retrieval_eval.py"
    spec = importlib.util.spec_from_file_location("retrieval_eval_script", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    monkeypatch.setenv("VOYAGE_API_KEY", "pa-x")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    for local in ("http://127.0.0.1:8080/v1", "http://localhost:9/v1"):
        monkeypatch.setenv("VOYAGE_BASE_URL", local)
        with pytest.raises(SystemExit, match="VOYAGE_BASE_URL points at"):
            module._refuse_local_base_urls()
    monkeypatch.setenv("VOYAGE_BASE_URL", "https://proxy.example.com/v1")
    module._refuse_local_base_urls()
    monkeypatch.delenv("VOYAGE_BASE_URL")
    module._refuse_local_base_urls()
    monkeypatch.delenv("VOYAGE_API_KEY")
    with pytest.raises(SystemExit, match="VOYAGE_API_KEY"):
        module._refuse_local_base_urls()
