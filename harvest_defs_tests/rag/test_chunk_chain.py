"""Passages in the chain: an edit re-embeds only the passages it touched; deletes, renames, reverts hold.

Driven as the daemon would (``run_chain``) over real files, DuckDB, dlt, the Voyage SDK and the emulator;
Voyage texts are counted by the emulator.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import run_chain
from harvest_defs.emulator import EmulatorServer
from harvest_defs.rag.chunking import document_of
from harvest_defs_tests.defs.conftest import write_corpus
from harvest_defs_tests.defs.lifecycle_helpers import costly, rows, spent

SECTIONS = {
    "Paging": "The pager rotates weekly among the platform engineers. Acknowledge a page within 15 minutes.",
    "Escalation": "Escalate to the incident commander when customers are affected for more than an hour.",
    "Handover": "Write a handover note in the on-call channel every Monday before noon.",
    "Tooling": "Dashboards live in Grafana; alerts are defined in the alerts repository.",
}


def policy(sections: dict[str, str]) -> str:
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections.items())
    return f"# On-call policy\n\nHow the on-call rotation works.\n\n{body}\n"


@pytest.fixture
def setup(
    tmp_path: Path, harvest_home: Path, bare_instance: dg.DagsterInstance, api_env: EmulatorServer
) -> tuple[Path, dg.Definitions, dg.DagsterInstance]:
    corpus = write_corpus(
        tmp_path / "corpus",
        {"ops": {"on-call.md": policy(SECTIONS), "tea.md": "# Tea\n\nGreen tea is steamed.\n"}},
    )
    return corpus, build_defs(corpus, sensor_interval=1), bare_instance


def chunk_rows(home: Path) -> dict[str, str]:
    return dict(rows(home / "warehouse.duckdb", "SELECT embedding_id, text FROM harvest.chunk_embeddings"))


def index_chunks(home: Path) -> dict[str, str]:
    return dict(
        rows(home / "rag.duckdb", "SELECT chunk_id, document_id FROM chunks WHERE chunk_id <> document_id")
    )


def test_an_edit_re_embeds_only_its_passage_and_the_lifecycle_holds_per_chunk(
    setup: tuple[Path, dg.Definitions, dg.DagsterInstance], harvest_home: Path, api_env: EmulatorServer
) -> None:
    corpus, defs, instance = setup
    cursors: dict[str, str | None] = {}

    def run() -> None:
        run_chain(defs, instance, cursors=cursors, timeout=120)

    run()
    first = chunk_rows(harvest_home)
    assert len(first) == 6  # intro + 4 sections of the policy, 1 of tea
    assert index_chunks(harvest_home) == {cid: document_of(cid) for cid in first}
    escalation = next(cid for cid, text in first.items() if "Escalate to the incident" in text)

    before = costly(api_env)
    edited = dict(SECTIONS, Escalation=SECTIONS["Escalation"] + " Page the VP for a data loss.")
    (corpus / "ops" / "on-call.md").write_text(policy(edited), encoding="utf-8")
    run()
    paid = spent(before, api_env)
    # One Claude request (the document's new summary), one Voyage text: the edited passage. The summary
    # (the document's leading sentences here) did not change, so its vector came from the cache.
    assert (
        paid.get("voyage_texts"),
        paid.get("voyage_embed_calls"),
        paid.get("anthropic_batch_requests"),
    ) == (
        1,
        1,
        1,
    ), paid
    second = chunk_rows(harvest_home)
    assert set(first) - set(second) == {escalation}, "only the edited passage's id may change"
    (new_id,) = set(second) - set(first)
    assert "Page the VP" in second[new_id]
    assert index_chunks(harvest_home) == {cid: document_of(cid) for cid in second}

    before = costly(api_env)
    (corpus / "ops" / "on-call.md").write_text(policy(SECTIONS), encoding="utf-8")  # revert
    (corpus / "ops" / "tea.md").rename(corpus / "ops" / "green-tea.md")  # rename
    run()
    assert spent(before, api_env) == {}, "a revert and a rename are free for passages too"
    third = chunk_rows(harvest_home)
    assert set(third) - set(first) == {
        c.replace("ops__tea", "ops__green-tea") for c in first if "ops__tea--" in c
    }
    assert not any(c.startswith("ops__tea--") for c in third)
    assert index_chunks(harvest_home) == {cid: document_of(cid) for cid in third}

    (corpus / "ops" / "on-call.md").unlink()  # delete
    run()
    assert set(chunk_rows(harvest_home)) == {c for c in third if c.startswith("ops__green-tea--")}
    assert set(index_chunks(harvest_home)) == set(chunk_rows(harvest_home))
    con = duckdb.connect(str(harvest_home / "warehouse.duckdb"), read_only=True)
    try:
        (partitions,) = con.execute(
            "SELECT list(DISTINCT partition_key) FROM harvest.chunk_embeddings"
        ).fetchone()
    finally:
        con.close()
    assert partitions == ["ops"]


def test_contextual_option_embeds_context_plus_passage_with_the_document_cached(
    tmp_path: Path,
    harvest_home: Path,
    bare_instance: dg.DagsterInstance,
    api_env: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Switched on the way a deployment does it (``HARVEST_RAG_CONTEXTUAL``, the default resource): the
    sensor-launched runs use the bound resource, so an explicit setting alone would need code."""
    from harvest_defs.defs.resources import RagResource
    from harvest_defs_tests.rag.test_contextual import DOCUMENT

    monkeypatch.setenv("HARVEST_RAG_CONTEXTUAL", "1")
    assert RagResource().contextual_on and not RagResource(contextual=False).contextual_on
    corpus = write_corpus(tmp_path / "corpus", {"product": {"zephyr.md": DOCUMENT}})
    defs = build_defs(corpus, sensor_interval=1)
    cursors: dict[str, str | None] = {}
    run_chain(defs, bare_instance, cursors=cursors, timeout=120)
    stats = api_env.stats()
    passages = chunk_rows(harvest_home)
    # 1 summary request + 1 context request per passage; the document was read from the cache.
    assert stats["anthropic_batch_requests"] == 1 + len(passages) and len(passages) >= 4
    assert stats.get("anthropic_cache_read_input_tokens", 0) > 0
    # The asset page reports what the contexts cost and what the cache saved (the run that read them).
    records = bare_instance.fetch_materializations(dg.AssetKey("chunk_embeddings"), limit=20).records
    metas = [
        {k: v.value for k, v in r.asset_materialization.metadata.items()}
        for r in records
        if r.asset_materialization is not None
    ]
    [paid] = [m for m in metas if m.get("context_cache_read_input_tokens")]
    assert paid["context_cache_read_input_tokens"] == stats["anthropic_cache_read_input_tokens"]
    assert paid["context_usd"] > 0 and paid["context_cache_saving_usd"] > 0, paid
    later = [text for cid, text in passages.items() if "Limit 5" in text]
    assert later and all(text.startswith("Zephyr plan.") for text in later), later[:1]  # context first
    indexed = dict(
        rows(harvest_home / "rag.duckdb", "SELECT chunk_id, text FROM chunks WHERE chunk_id <> document_id")
    )
    assert indexed == passages  # BM25 and the answerer see context + passage too
    before = costly(api_env)
    run_chain(defs, bare_instance, cursors=cursors, timeout=120)
    assert spent(before, api_env) == {}, "a re-run sends no context request and embeds nothing"


def test_passages_above_the_threshold_go_as_one_voyage_batch_and_a_re_run_sends_nothing(
    setup: tuple[Path, dg.Definitions, dg.DagsterInstance], harvest_home: Path, api_env: EmulatorServer
) -> None:
    """The summaries' threshold setting sends the partition's 6 passages through the Batch API (its 2
    summaries stay real-time, under it); voyage_batch_sensor brings chunk_embeddings back to collect."""
    from harvest_defs.defs.resources import VoyageResource
    from harvest_defs.defs.voyage_batches import CHUNK_PROVIDER

    corpus, _, instance = setup
    voyage = VoyageResource(api_key=dg.EnvVar("VOYAGE_API_KEY"), batch_threshold=3)
    defs = build_defs(corpus, sensor_interval=1, resources={"voyage": voyage})
    cursors: dict[str, str | None] = {}
    chain = run_chain(defs, instance, cursors=cursors, timeout=120)
    stats = api_env.stats()
    passages = chunk_rows(harvest_home)
    assert len(passages) == 6
    assert (stats.get("voyage_batches_created"), stats.get("voyage_batch_inputs")) == (1, 6), stats
    assert stats.get("voyage_texts") == 2, "only the two summaries went real-time"
    ledger = (defs.resources or {})["store"].ledger()
    assert not ledger.in_flight(CHUNK_PROVIDER) and not ledger.ended_uncollected(CHUNK_PROVIDER)
    voyage_runs = [
        (
            r.dagster_run.tags["harvest/provider"],
            sorted({str(e.asset_key.to_user_string()) for e in r.get_asset_materialization_events()}),
        )
        for r in chain.collect_runs
        if "harvest/batch_id" in r.dagster_run.tags
    ]
    assert voyage_runs == [(CHUNK_PROVIDER, ["chunk_embeddings"])], "chunk_embeddings alone collects it"
    assert index_chunks(harvest_home) == {cid: document_of(cid) for cid in passages}
    before = costly(api_env)
    run_chain(defs, instance, cursors=cursors, timeout=120)
    assert spent(before, api_env) == {}, "a re-run creates no batch and embeds nothing"
