"""rag_answers: a question set answered through Message Batches, collected when the sensor sees it end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from harvest_defs.defs.assets.answers import RAG_ANSWERS_KEY
from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer

QUESTIONS = [
    {"id": "q-ducks", "question": "What do ducks eat?"},
    {"id": "q-geese", "question": "In what formation do geese migrate?"},
]


def _meta(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def indexed_with_questions(defs: dg.Definitions, instance: dg.DagsterInstance, corpus: Path) -> Any:
    """Partition alpha summarized, embedded and indexed, and QUESTIONS beside the corpus; the sensor tick."""
    materialize_selection(defs, instance, ["documents", "claude_summary_batches"], "alpha")
    tick = tick_sensor(defs, instance, "claude_batch_sensor", None)
    run_requests(defs, instance, tick.run_requests)
    materialize_selection(defs, instance, ["rag_index"])
    (corpus / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in QUESTIONS), encoding="utf-8")
    return tick


def test_question_set_is_batched_collected_by_the_sensor_and_never_asked_twice(
    chain_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_env: EmulatorServer,
    corpus: Path,
    harvest_home: Path,
) -> None:
    tick = indexed_with_questions(chain_defs, instance, corpus)

    asked = _meta(materialize_selection(chain_defs, instance, ["rag_answers"]), "rag_answers")
    assert asked["questions"] == 2 and asked["requests_sent"] == 2 and asked["answers_loaded"] == 0
    # Rerank is on by default: one real-time rerank per question, cached for the re-runs below.
    assert (asked["reranked"], asked["rerank_requests"], asked["rerank_cached"]) == (True, 2, 0)
    assert api_env.stats().get("voyage_rerank_calls") == 2

    answers_tick = tick_sensor(chain_defs, instance, "claude_batch_sensor", tick.cursor)
    [request] = answers_tick.run_requests
    assert request.partition_key is None and list(request.asset_selection or []) == [
        dg.AssetKey("rag_answers")
    ]
    [collected] = run_requests(chain_defs, instance, answers_tick.run_requests)
    assert _meta(collected, "rag_answers")["answers_loaded"] == 2

    with duckdb.connect(str(harvest_home / "warehouse.duckdb"), read_only=True) as con:
        rows = dict(
            con.execute("SELECT custom_id, response FROM harvest.rag_answers WHERE success").fetchall()
        )
    assert set(rows) == {"q-ducks", "q-geese"}
    assert rows["q-ducks"].startswith("[source alpha__ducks--")  # a passage of the document, like `ask`
    assert rows["q-ducks"].count("paddle on ponds") <= 1
    assert "V formations" in rows["q-geese"]

    before = {k: v for k, v in api_env.stats().items() if k.endswith("_http_requests")}
    again = _meta(materialize_selection(chain_defs, instance, ["rag_answers"]), "rag_answers")
    assert again["requests_sent"] == 0 and again["requests_cached"] == 2
    assert (again["rerank_requests"], again["rerank_cached"]) == (0, 2)
    after = {k: v for k, v in api_env.stats().items() if k.endswith("_http_requests")}
    assert after == before, "an unchanged question set must not cost a single request"

    # Off-able: `rerank: false` on the resource asks over the fused order and never calls the reranker.
    from harvest_defs.defs.build import build_defs
    from harvest_defs.defs.resources import RagResource

    off = build_defs(corpus, sensor_interval=1, resources={"rag": RagResource(rerank=False)})
    calls = api_env.stats().get("voyage_rerank_calls", 0)
    plain = _meta(materialize_selection(off, instance, ["rag_answers"]), "rag_answers")
    assert (plain["reranked"], plain["rerank_mode"]) == (False, "off") and "rerank_requests" not in plain
    assert api_env.stats().get("voyage_rerank_calls", 0) == calls
    assert plain["requests_sent"] + plain["requests_cached"] == 2


def test_a_large_question_set_reranks_through_one_voyage_batch_before_it_is_asked(
    corpus: Path, harvest_home: Path, instance: dg.DagsterInstance, api_env: EmulatorServer
) -> None:
    """At/above RagResource.rerank_batch_threshold: the run submits ONE Voyage /v1/rerank batch and asks
    nothing; voyage_batch_sensor brings rag_answers back, which fills the cache and asks both questions
    (reranked); a re-run pays nothing."""
    from harvest_defs.defs.build import build_defs
    from harvest_defs.defs.resources import RagResource
    from harvest_defs.defs.voyage_batches import RERANK_PROVIDER
    from harvest_defs.rag import rerank_batch

    assert rerank_batch.RERANK_PROVIDER == RERANK_PROVIDER  # one namespace, said in both layers
    defs = build_defs(corpus, sensor_interval=1, resources={"rag": RagResource(rerank_batch_threshold=2)})
    indexed_with_questions(defs, instance, corpus)

    first = _meta(materialize_selection(defs, instance, ["rag_answers"]), "rag_answers")
    stats = api_env.stats()
    assert (first["rerank_mode"], first["rerank_questions_deferred"], first["requests_sent"]) == (
        "batch",
        2,
        0,
    )
    assert (stats.get("voyage_batches_created"), stats.get("voyage_rerank_calls", 0)) == (1, 0), stats

    voyage_tick = tick_sensor(defs, instance, "voyage_batch_sensor", None)
    [request] = voyage_tick.run_requests
    assert request.partition_key is None and list(request.asset_selection or []) == [RAG_ANSWERS_KEY]
    [second] = run_requests(defs, instance, voyage_tick.run_requests)
    asked = _meta(second, "rag_answers")
    assert (asked["rerank_cached"], asked["rerank_questions_deferred"], asked["requests_sent"]) == (2, 0, 2)
    assert not store_ledger(defs).in_flight(RERANK_PROVIDER)

    paid = ("voyage_batches_created", "voyage_rerank_calls", "anthropic_batch_requests", "voyage_texts")
    before = {k: api_env.stats().get(k, 0) for k in paid}
    again = _meta(materialize_selection(defs, instance, ["rag_answers"]), "rag_answers")
    assert (again["requests_sent"], again["rerank_questions_deferred"]) == (0, 0)
    assert {k: api_env.stats().get(k, 0) for k in paid} == before, "a re-run pays for nothing"
    assert before["voyage_batches_created"] == 1, "never a second rerank batch"


def store_ledger(defs: dg.Definitions) -> Any:
    return (defs.resources or {})["store"].ledger()
