"""The retrieval eval: recall@5 and MRR@10 of the right passage, for each way the index can retrieve.

Methods, all hybrid (HNSW + BM25, RRF) over the same generated corpus (``rag/eval_corpus.py``):
- ``document_summaries`` — today's index: one row per document, the summary's vector, summary + whole
  document as the text. A hit needs the right document *and* the answer within the first
  ``MAX_SOURCE_CHARS`` characters the answerer is shown (``document_found`` counts the document alone);
- ``chunks`` — passages (``rag/chunking.py``) embedded and BM25-indexed as heading path + text;
- ``chunks_contextual`` — the same passages with Claude's situating context first (``rag/contextual.py``,
  one Message Batch request per passage, the document read from the prompt cache);
- ``+ rerank`` — Voyage ``rerank-2.5`` over the top ``candidates`` fused passages of each.

Everything goes through the real SDKs and the same library code the chain uses (the Claude batch
harvester, ``build_index``, ``search_connection``, ``voyage_reranker``), so the eval runs unchanged
against the emulator or, with real keys and no ``*_BASE_URL``, against the real APIs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from harvest_defs.rag.answer import MAX_SOURCE_CHARS, _plain
from harvest_defs.rag.chunking import Chunk, chunk_document
from harvest_defs.rag.contextual import DEFAULT_CONTEXT_MODEL, contextual_text, situate_chunks
from harvest_defs.rag.eval_corpus import EvalDocument, EvalQuestion
from harvest_defs.rag.index import build_index, open_index
from harvest_defs.rag.rerank import voyage_reranker
from harvest_defs.rag.search import Hit, search_connection

SUMMARY_PROMPT = "Summarize this document for a search index.\n\n<document>\n{text}\n</document>"
SUMMARY_SYSTEM = "You summarize documents for a search index. Reply with a faithful summary of 2-3 sentences."
EMBED_BATCH = 128


@dataclass(frozen=True)
class EvalConfig:
    chunk_max_tokens: int = 120
    chunk_overlap_tokens: int = 20
    claude_model: str = DEFAULT_CONTEXT_MODEL
    voyage_model: str = "voyage-3.5"
    rerank_model: str = "rerank-2.5"
    candidates: int = 30
    recall_k: int = 5
    mrr_k: int = 10
    poll_interval: float = 0.5
    timeout: float = 3600.0


def _voyage() -> Any:
    import voyageai

    return voyageai.Client(
        api_key=os.environ.get("VOYAGE_API_KEY"),
        base_url=os.environ.get("VOYAGE_BASE_URL") or None,
        max_retries=5,
    )


def embed_all(texts: Sequence[str], model: str, input_type: str) -> list[np.ndarray]:
    client = _voyage()
    out: list[np.ndarray] = []
    for start in range(0, len(texts), EMBED_BATCH):
        result = client.embed(list(texts[start : start + EMBED_BATCH]), model=model, input_type=input_type)
        out.extend(np.asarray(v, dtype=np.float32) for v in result.embeddings)
    return out


def _rows(
    ids: list[str], documents: list[str], texts: list[str], vectors: list[np.ndarray], model: str
) -> pa.Table:
    dim = len(vectors[0])
    return pa.table(
        {
            "chunk_id": ids,
            "document_id": documents,
            "text": texts,
            "model": [model] * len(ids),
            "text_hash": [None] * len(ids),
            "embedding": pa.array([v.tolist() for v in vectors], type=pa.list_(pa.float32(), dim)),
        }
    )


def summarize(harvester: Any, docs: Sequence[EvalDocument], config: EvalConfig) -> dict[str, str]:
    """The chain's summary request per document, through Message Batches (blocking)."""
    from harvest_defs.harvest.claude.stored import StoredRowsReport

    prompts = [{"custom_id": d.document_id, "text": SUMMARY_PROMPT.format(text=d.text)} for d in docs]
    prepared = harvester.prepare(prompts, config.claude_model, 300, SUMMARY_SYSTEM)
    submitted = harvester.submit_prepared(prepared, system_prompt=SUMMARY_SYSTEM)
    if submitted.batch_ids:
        harvester.wait(submitted.batch_ids, poll_interval=config.poll_interval, timeout=config.timeout)
    summaries: dict[str, str] = {}
    for table in harvester.stored_rows(prepared.requests, StoredRowsReport()):
        for row in table.select(["custom_id", "response", "success"]).to_pylist():
            if row["success"]:
                summaries[row["custom_id"]] = row["response"]
    return summaries


def _is_hit(hit: Hit, question: EvalQuestion, shown_chars: int | None, document_only: bool = False) -> bool:
    if hit.document_id != question.document_id:
        return False
    if document_only:
        return True
    text = " ".join(hit.text.split())
    if shown_chars is not None:
        text = _plain(hit.text)[:shown_chars]
    return question.answer in text


def score(
    ranked: list[list[Hit]],
    questions: Sequence[EvalQuestion],
    config: EvalConfig,
    shown: int | None,
    document_only: bool = False,
) -> dict[str, float]:
    """recall@k and MRR@k: a hit is the right document with the answer sentence in its (shown) text."""
    recall = mrr = 0.0
    for hits, question in zip(ranked, questions, strict=True):
        found = (
            i for i, h in enumerate(hits[: config.mrr_k], 1) if _is_hit(h, question, shown, document_only)
        )
        rank = next(found, None)
        recall += 1.0 if rank is not None and rank <= config.recall_k else 0.0
        mrr += 1.0 / rank if rank is not None else 0.0
    n = max(1, len(questions))
    return {f"recall@{config.recall_k}": round(recall / n, 4), f"mrr@{config.mrr_k}": round(mrr / n, 4)}


def _retrieve(
    path: Path,
    questions: Sequence[EvalQuestion],
    query_vectors: dict[str, np.ndarray],
    k: int,
    rerank: Callable[[str, Sequence[Hit], int], list[Hit]] | None = None,
    candidates: int = 30,
) -> list[list[Hit]]:
    con = open_index(path)
    try:
        out = []
        for q in questions:
            pool = search_connection(
                con, q.question, query_vectors.__getitem__, max(k, candidates if rerank else k)
            )
            out.append(rerank(q.question, pool, k) if rerank else pool[:k])
        return out
    finally:
        con.close()


def run_eval(
    docs: Sequence[EvalDocument],
    questions: Sequence[EvalQuestion],
    work_dir: Path,
    config: EvalConfig | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the three indexes in ``work_dir`` and score every method; returns the results dict."""
    from harvest_defs.harvest.claude import ClaudeBatchHarvester

    config = config or EvalConfig()
    started = time.monotonic()
    harvester = ClaudeBatchHarvester(
        ledger_path=work_dir / "ledger.sqlite",
        raw_dir=work_dir / "raw",
        poll_interval=config.poll_interval,
        log=log,
    )
    summaries = summarize(harvester, docs, config)
    chunks: list[Chunk] = [
        c
        for d in docs
        for c in chunk_document(
            d.document_id,
            d.text,
            d.title,
            max_tokens=config.chunk_max_tokens,
            overlap_tokens=config.chunk_overlap_tokens,
        )
    ]
    texts = {d.document_id: d.text for d in docs}
    contexts, context_report = situate_chunks(
        harvester,
        chunks,
        texts,
        model=config.claude_model,
        poll_interval=config.poll_interval,
        timeout=config.timeout,
        log=log,
    )
    doc_ids = [d.document_id for d in docs if d.document_id in summaries]
    plain = [c.text for c in chunks]
    situated = [contextual_text(contexts.get(c.chunk_id), c.text) for c in chunks]
    vectors = embed_all([summaries[i] for i in doc_ids] + plain + situated, config.voyage_model, "document")
    n_docs, n_chunks = len(doc_ids), len(chunks)
    indexes = {
        "document_summaries": _rows(
            doc_ids,
            doc_ids,
            [f"{summaries[i]}\n\n{texts[i]}" for i in doc_ids],
            vectors[:n_docs],
            config.voyage_model,
        ),
        "chunks": _rows(
            [c.chunk_id for c in chunks],
            [c.document_id for c in chunks],
            plain,
            vectors[n_docs : n_docs + n_chunks],
            config.voyage_model,
        ),
        "chunks_contextual": _rows(
            [c.chunk_id for c in chunks],
            [c.document_id for c in chunks],
            situated,
            vectors[n_docs + n_chunks :],
            config.voyage_model,
        ),
    }
    paths = {}
    for name, rows in indexes.items():
        paths[name] = work_dir / f"{name}.duckdb"
        build_index(rows, paths[name])
    query_vectors = dict(
        zip(
            [q.question for q in questions],
            embed_all([q.question for q in questions], config.voyage_model, "query"),
            strict=True,
        )
    )
    k = config.mrr_k
    reranker = voyage_reranker(config.rerank_model)
    doc_ranked = _retrieve(paths["document_summaries"], questions, query_vectors, k)
    methods = {
        "document_summaries": score(doc_ranked, questions, config, MAX_SOURCE_CHARS),
        "document_summaries (document found)": score(doc_ranked, questions, config, None, document_only=True),
        "chunks": score(_retrieve(paths["chunks"], questions, query_vectors, k), questions, config, None),
        "chunks + rerank": score(
            _retrieve(paths["chunks"], questions, query_vectors, k, reranker, config.candidates),
            questions,
            config,
            None,
        ),
        "chunks_contextual": score(
            _retrieve(paths["chunks_contextual"], questions, query_vectors, k), questions, config, None
        ),
        "chunks_contextual + rerank": score(
            _retrieve(paths["chunks_contextual"], questions, query_vectors, k, reranker, config.candidates),
            questions,
            config,
            None,
        ),
    }
    return {
        "documents": len(docs),
        "questions": len(questions),
        "passages": n_chunks,
        "mean_document_chars": round(sum(len(d.text) for d in docs) / max(1, len(docs))),
        "config": config.__dict__,
        "methods": methods,
        "contextual_cost": context_report.as_dict(),
        "duration_s": round(time.monotonic() - started, 1),
    }
