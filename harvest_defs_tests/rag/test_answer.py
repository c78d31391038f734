"""Answers with cited sources, batch prompts for rag_answers, the ``harvest ask`` / ``search`` commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harvest_defs.cli import app
from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import split_instruction, summarize
from harvest_defs.rag.answer import answer, answer_batch_prompts, build_prompt, cited_source_ids
from harvest_defs.rag.search import search
from harvest_defs_tests.rag.conftest import local_embedder, questions

QUESTION = "How quickly must the primary on-call engineer acknowledge a page?"


def test_prompt_puts_the_best_source_first_so_an_extractive_answer_is_sensible(sample_index: Path) -> None:
    hits = search(QUESTION, k=3, rag_path=sample_index, embed_query=local_embedder())
    prompt = build_prompt(QUESTION, hits)
    assert split_instruction(prompt).startswith("[source on-call-policy] On-call policy. Every engineer")
    assert prompt.rstrip().endswith(f"Question: {QUESTION}")
    extractive, _ = summarize(prompt, max_tokens=200)  # what the emulator's /v1/messages answers
    assert cited_source_ids(extractive, hits) == ["on-call-policy"]
    assert cited_source_ids("See [glossary] and [not-retrieved] and [source glossary].", hits[:0]) == []


def test_batch_prompts_carry_question_ids_and_retrieved_context(sample_index: Path) -> None:
    written = questions()[:4]
    prompts = answer_batch_prompts(
        [(str(q["id"]), str(q["question"])) for q in written],
        k=3,
        rag_path=sample_index,
        embed_query=local_embedder(),
    )
    assert [p["custom_id"] for p in prompts] == [q["id"] for q in written]
    for prompt, q in zip(prompts, written, strict=True):
        assert f"[source {q['document_id']}]" in prompt["text"]
        assert prompt["text"].rstrip().endswith(str(q["question"]))


def test_answer_asks_claude_and_returns_cited_sources(
    sample_index: Path, claude_route: EmulatorServer
) -> None:
    result = answer(QUESTION, k=3, rag_path=sample_index, embed_query=local_embedder())
    assert result.sources[0].document_id == "on-call-policy"
    assert "15 minutes" in result.text
    assert result.cited_ids == ["on-call-policy"]
    assert result.usage["input_tokens"] > 0


def test_cli_search_keyword_mode_needs_no_api(sample_index: Path) -> None:
    outcome = CliRunner().invoke(
        app,
        [
            "search",
            "LF-4471 tokenizer quota",
            "--mode",
            "keyword",
            "--k",
            "2",
            "--json",
            "--index",
            str(sample_index),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    hits = json.loads(outcome.output)
    assert hits[0]["document_id"] == "error-codes" and len(hits) == 2


def test_cli_reports_a_missing_index_and_a_bad_mode(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        app, ["search", "x", "--mode", "keyword", "--index", str(tmp_path / "none.duckdb")]
    )
    assert missing.exit_code == 1 and "no RAG index" in missing.output
    bad = CliRunner().invoke(
        app, ["search", "x", "--mode", "semantic", "--index", str(tmp_path / "none.duckdb")]
    )
    assert bad.exit_code != 0 and "hybrid" in bad.output


def test_cli_ask_end_to_end_against_the_emulator(
    sample_index: Path, claude_route: EmulatorServer, voyage_route: EmulatorServer
) -> None:
    """Voyage embeds the question over HTTP, DuckDB retrieves, Claude answers: the real `harvest ask` path."""
    outcome = CliRunner().invoke(app, ["ask", QUESTION, "--json", "--index", str(sample_index)])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.output)
    assert result["sources"][0]["document_id"] == "on-call-policy"
    assert result["cited_ids"] == ["on-call-policy"]
    assert claude_route.stats()  # the emulator served the calls
    pretty = CliRunner().invoke(app, ["ask", QUESTION, "--k", "2", "--index", str(sample_index)])
    assert pretty.exit_code == 0 and "on-call-policy" in pretty.output
