"""``rag_answers``: a whole question set answered over the RAG index through Message Batches (50% off).

Same rhythm as the rest of the chain, so no run waits for a batch: each materialization first loads the
answers of ended batches into ``harvest.rag_answers`` (merge on the question id), then embeds the
questions (cached in the warehouse, so an unchanged question is never embedded twice), retrieves context
and submits the questions whose prompt has no answer yet. ``claude_batch_sensor`` requests this asset
again when one of its batches ends. A question whose retrieved context changed (the index grew) has a new
request hash and is asked again; an unchanged one costs nothing.

Rerank (``RagResource.rerank``, on by default; ``defs/answers_rerank.py``): each question's fused
candidates are reordered by Voyage rerank before its prompt is built. Below
``RagResource.rerank_batch_threshold`` questions (1,000) through the *real-time* API behind an on-disk
cache (``rag/rerank.RerankCache``: an unchanged question over unchanged candidates is never reranked
twice); at or above it through the Voyage Batch API ``/v1/rerank`` (``rag/rerank_batch.py``, 33% off):
the run defers the questions whose ranking is unknown and submits their rerank batch, and
``voyage_batch_sensor`` brings this asset back to ask them when it ends. Why real time below the
threshold: the reranked passages go *into* the answer prompt, so a rerank batch puts a second sensor
round-trip (up to 12 h) in front of the answer batch, to save 33% of the cheapest step (~10k tokens per
question at $0.05/M for 30 passages: ~$0.17 per 1,000 questions), while the answer batch, the real cost,
is already 50% off; a small set reranks in seconds and needs no worker to wait.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from harvest_defs.defs.answers_rerank import RerankStep, rerank_step
from harvest_defs.defs.assets.claude import CLAUDE_PROVIDER
from harvest_defs.defs.assets.rag import RAG_INDEX_KEY
from harvest_defs.defs.assets.rag_backends import index_for_search
from harvest_defs.defs.batches import newest_first, poll_ended_batches
from harvest_defs.defs.metadata import as_metadata, usd
from harvest_defs.defs.resources import (
    DUCKDB_POOL,
    AnthropicResource,
    HarvestStoreResource,
    RagResource,
    VoyageResource,
)
from harvest_defs.defs.warehouse import loading, query_arrow

RAG_ANSWERS_KEY = dg.AssetKey("rag_answers")
# The ledger's partition key for these batches: the sensor routes them to this asset, not to a collection.
RAG_ANSWERS_BATCHES = "__rag_answers__"
ANSWERS_PIPELINE = "harvest_rag_answers"
QUESTIONS_PIPELINE = "harvest_questions"
QUESTIONS_DATASET = "harvest_questions"


def load_questions(corpus: Path) -> list[tuple[str, str]]:
    """``(id, question)`` pairs from ``questions.jsonl`` beside (or inside) the corpus folder."""
    for candidate in (corpus / "questions.jsonl", corpus.parent / "questions.jsonl"):
        if candidate.exists():
            lines = candidate.read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
            return [(str(r["id"]), str(r["question"])) for r in records]
    return []


def _question_vectors(
    questions: list[tuple[str, str]], voyage: VoyageResource, store: HarvestStoreResource
) -> dict[str, Any]:
    """Query embeddings through the library's cached resource (its own dataset), read back by text."""
    import numpy as np

    from harvest_defs.harvest.voyage import voyage_embeddings_batch

    resource = voyage_embeddings_batch(
        texts=[{"id": qid, "text": text} for qid, text in questions],
        input_type="query",
        output_dimension=voyage.dims,
        mode="realtime",
        **voyage.client_kwargs(),
    )
    with loading(store, QUESTIONS_PIPELINE, QUESTIONS_DATASET) as pipeline:  # attach only when ours
        pipeline.run(resource, **store.warehouse().run_kwargs())
    table = query_arrow(
        store,
        store.warehouse_path,
        f"SELECT text, embedding FROM {QUESTIONS_DATASET}.voyage_embeddings",
        needs=f"{QUESTIONS_DATASET}.voyage_embeddings",
    )
    if table is None:
        return {}
    # FLOAT[dim] in DuckDB, a jsonb list on Postgres: flattened the same way either way
    vectors = table.column("embedding").combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = flat.reshape(len(table), -1)
    return dict(zip(table.column("text").to_pylist(), matrix, strict=True))


def _load_answers(harvester: Any, batch_ids: list[str], store: HarvestStoreResource) -> int:
    """Ended batches' answers into ``harvest.rag_answers`` (merge on question id); returns rows loaded.

    ``batch_ids`` newest first: the load is declared unique (``defs/unique_merge.py``, no dlt dedup
    window), so a question answered by two batches keeps the newest answer.
    """
    from harvest_defs.defs.unique_merge import load_unique

    loaded = 0

    def tables() -> Iterator[Any]:
        nonlocal loaded
        for batch_id in batch_ids:
            for table in harvester.collect(batch_id):
                loaded += table.num_rows
                yield table

    load_unique(store, ANSWERS_PIPELINE, tables(), name="rag_answers", primary_key="custom_id")
    for batch_id in batch_ids:
        harvester.mark_collected(batch_id)
    return loaded


@dg.asset(
    key=RAG_ANSWERS_KEY,
    deps=[RAG_INDEX_KEY],
    group_name="harvest",
    kinds={"anthropic", "duckdb"},
    pool=DUCKDB_POOL,
    description="Answers the corpus's question set over the RAG index via Message Batches (50% off).",
)
def rag_answers(
    context: dg.AssetExecutionContext,
    store: HarvestStoreResource,
    anthropic: AnthropicResource,
    voyage: VoyageResource,
    rag: RagResource,
) -> dg.MaterializeResult:
    from harvest_defs.rag.answer import SYSTEM_PROMPT, answer_batch_prompts

    started = time.monotonic()
    harvester = anthropic.harvester(store)
    ended = poll_ended_batches(
        harvester.ledger, CLAUDE_PROVIDER, harvester.poll, context.log, RAG_ANSWERS_BATCHES
    )
    collected = [batch.batch_id for batch in newest_first(ended)]
    answers_loaded = _load_answers(harvester, collected, store) if collected else 0

    questions = load_questions(store.corpus_path)
    if not questions:
        context.log.warning(f"no questions.jsonl beside {store.corpus_path}: nothing to ask")
    submitted: list[str] = []
    sent = cached = 0
    est = 0.0
    step: RerankStep | None = None
    has_index, rag_path = index_for_search(store)
    if questions and has_index:
        vectors = _question_vectors(questions, voyage, store)
        step = rerank_step(rag, voyage, store, len(questions), RAG_ANSWERS_BATCHES, context.log)
        prompts = answer_batch_prompts(
            questions,
            rag_path=rag_path,
            embed_query=vectors.__getitem__,
            rerank=step.reranker,
            candidates=rag.rerank_candidates,
        )
        step.submit(RAG_ANSWERS_BATCHES)
        if step.given_up_reason:
            context.log.warning(step.given_up_reason)
        waiting = step.deferred()  # batch mode: questions whose ranking is still in a rerank batch
        prompts = [p for (_, q), p in zip(questions, prompts, strict=True) if q not in waiting]
        if waiting:
            context.log.info(
                f"{len(waiting)} question(s) wait for rerank batch(es) {step.submitted}; "
                "voyage_batch_sensor brings rag_answers back when they end"
            )
        report = harvester.submit(
            prompts,
            model=anthropic.model,
            max_tokens=anthropic.max_tokens,
            system_prompt=SYSTEM_PROMPT,
            partition_key=RAG_ANSWERS_BATCHES,
        )
        submitted, sent, cached = list(report.batch_ids), report.requests_sent, report.requests_cached
        est = float(report.estimated_cost_usd or 0.0)
        if report.requests_sent:
            context.log.info(f"asked {sent} question(s) in {submitted}; claude_batch_sensor collects them")
    return dg.MaterializeResult(
        metadata=as_metadata(
            {
                "questions": len(questions),
                "answers_loaded": answers_loaded,
                "batches_collected": dg.MetadataValue.json(collected) if collected else None,
                "batches_pending": dg.MetadataValue.json(submitted) if submitted else None,
                "requests_sent": sent,
                "requests_cached": cached,
                **(step.metadata() if step is not None else {}),
                "est_usd": usd(est),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
    )
