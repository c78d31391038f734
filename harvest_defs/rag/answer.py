"""Answer questions from the index: retrieve top-k chunks, then ask Claude with them as cited context.

Prompt layout: one instruction line ending in ``:``, a blank line, the sources (best first, each opening
with ``[source <id>]``), then the question last. A real model reads the sources and cites ``[<id>]``; the
offline emulator returns the leading sentences after the instruction, i.e. the best source's tag and its
opening sentences, which is a sensible extractive answer that even "cites" its source. The same prompt
goes to the Message Batches API for bulk question sets (``answer_batch_prompts``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from harvest_defs.rag.embedders import QueryEmbedder
from harvest_defs.rag.search import (
    Filters,
    Hit,
    Mode,
    has_chunks,
    open_search_connection,
    search_connection,
)

if TYPE_CHECKING:
    from harvest_defs.rag.rerank import Reranker

DEFAULT_ANSWER_MODEL = "claude-haiku-4-5"
DEFAULT_MAX_TOKENS = 512
INSTRUCTION = (
    "Answer the question at the end using only the sources below. Cite the ids of the sources you use "
    "in square brackets, like [doc-id]. If the sources do not contain the answer, say so:"
)
SYSTEM_PROMPT = "You answer questions about internal documents concisely and always cite source ids."
MAX_SOURCE_CHARS = 4000
_HEADING = re.compile(r"^#+\s*(.+?)\s*$", re.MULTILINE)
# Passage ids are a document id (<= 64) + "--" + 12 hex.
_CITATION = re.compile(r"\[(?:source\s+)?([A-Za-z0-9_-]{1,80})\]")


@dataclass(frozen=True)
class Answer:
    """The model's answer, the chunks it was given (``sources``) and the source ids it cited."""

    question: str
    text: str
    sources: list[Hit]
    cited_ids: list[str]
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    cited_chunks: list[str] = field(default_factory=list)  # passage ids cited (their documents in cited_ids)
    reranked: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.text,
            "cited_ids": self.cited_ids,
            "cited_chunks": self.cited_chunks,
            "reranked": self.reranked,
            "model": self.model,
            "usage": self.usage,
            "sources": [hit.as_dict() for hit in self.sources],
        }


def _plain(text: str) -> str:
    """One paragraph of prose: a Markdown heading becomes a sentence, whitespace collapses.

    Keeps each source a single block after its ``[source id]`` tag, and lets an extractive model (the
    emulator) cut whole sentences instead of gluing a title onto the first one.
    """
    text = _HEADING.sub(lambda m: m.group(1).rstrip(".:") + ". ", text)
    return " ".join(text.split())


def source_id(hit: Hit) -> str:
    """What the answerer cites: the passage id for a passage, the document id for a summary row."""
    return hit.chunk_id if hit.chunk_id != hit.document_id else hit.document_id


def _source_block(hit: Hit) -> str:
    if hit.chunk_id == hit.document_id:
        return f"[source {hit.document_id}] {_plain(hit.text)[:MAX_SOURCE_CHARS]}"
    # A passage opens with its place in the document ("Title > Section", rag/chunking.embed_text): the
    # answerer sees which document (title and id) the passage comes from.
    place, _, content = hit.text.partition("\n\n")
    where = (
        f"(document {hit.document_id}: {' '.join(place.split())})"
        if content
        else f"(document {hit.document_id})"
    )
    return f"[source {hit.chunk_id}] {where} {_plain(content or place)[:MAX_SOURCE_CHARS]}"


def build_prompt(question: str, hits: Sequence[Hit]) -> str:
    """The user message: instruction line, blank line, sources best-first, question last."""
    blocks = [_source_block(hit) for hit in hits]
    body = "\n\n".join(blocks) if blocks else "(no sources found)"
    return f"{INSTRUCTION}\n\n{body}\n\nQuestion: {question.strip()}"


def cited_source_ids(answer_text: str, hits: Sequence[Hit]) -> list[str]:
    """Document ids the answer cites (directly or through one of their passages), in order of mention."""
    return cited_ids(answer_text, hits)[0]


def cited_ids(answer_text: str, hits: Sequence[Hit]) -> tuple[list[str], list[str]]:
    """(documents, passages) the answer cites, in order of first mention, restricted to the sources given."""
    documents = {hit.document_id: hit.document_id for hit in hits}
    passages = {hit.chunk_id: hit.document_id for hit in hits if hit.chunk_id != hit.document_id}
    cited: list[str] = []
    chunks: list[str] = []
    for match in _CITATION.finditer(answer_text):
        found = match.group(1)
        doc_id = passages.get(found) or documents.get(found)
        if found in passages and found not in chunks:
            chunks.append(found)
        if doc_id is not None and doc_id not in cited:
            cited.append(doc_id)
    return cited, chunks


def retrieve(
    con: duckdb.DuckDBPyConnection,
    question: str,
    embed_query: QueryEmbedder | None,
    k: int,
    mode: Mode,
    filters: Filters | None = None,
    *,
    rerank: Reranker | None = None,
    candidates: int = 30,
) -> list[Hit]:
    """The answer's sources: passages when the index has them (else the summary rows), hybrid-fused, then
    reranked over ``candidates`` when a reranker is given."""
    scoped = dict(filters or {})
    if "kind" not in scoped and has_chunks(con):
        scoped["kind"] = "chunk"
    if rerank is None:
        return search_connection(con, question, embed_query, k, mode, scoped or None)
    pool = search_connection(con, question, embed_query, max(k, candidates), mode, scoped or None)
    return rerank(question, pool, k)


def _ask_claude(prompt: str, model: str, max_tokens: int) -> tuple[str, dict[str, int]]:
    import anthropic

    client = anthropic.Anthropic(
        api_key=os.environ.get("ANTHROPIC_API_KEY"),
        base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        max_retries=4,
    )
    message = client.messages.create(
        model=model,
        max_tokens=max_tokens,
        system=SYSTEM_PROMPT,
        messages=[{"role": "user", "content": prompt}],
    )
    text = "".join(getattr(block, "text", "") for block in message.content)
    usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
    return text, usage


def answer(
    question: str,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    *,
    rag_path: Path | str | None = None,
    embed_query: QueryEmbedder | None = None,
    model: str = DEFAULT_ANSWER_MODEL,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    rerank: Reranker | None = None,
    candidates: int = 30,
) -> Answer:
    """Retrieve the top-k passages (reranked when ``rerank`` is given) and ask Claude (real-time Messages
    API; ANTHROPIC_* env) to answer, citing passage and document."""
    con = open_search_connection(rag_path)
    try:
        hits = retrieve(con, question, embed_query, k, mode, filters, rerank=rerank, candidates=candidates)
    finally:
        con.close()
    text, usage = _ask_claude(build_prompt(question, hits), model, max_tokens)
    documents, chunks = cited_ids(text, hits)
    return Answer(question, text, hits, documents, model, usage, chunks, rerank is not None)


def answer_batch_prompts(
    questions: Iterable[tuple[str, str]],
    k: int = 5,
    mode: Mode = "hybrid",
    *,
    rag_path: Path | str | None = None,
    embed_query: QueryEmbedder | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    rerank: Reranker | None = None,
    candidates: int = 30,
) -> list[dict[str, str]]:
    """Message Batch prompts (``{"custom_id", "text"}``, the harvester's input) for ``(id, question)`` pairs.

    Retrieval happens now, on one read-only connection, exactly as ``answer`` retrieves (passages when the
    index has them, reranked over ``candidates`` when ``rerank`` is given); the answers come back through
    the Claude batch harvester (``rag_answers``) at half the price. ``custom_id`` is the question id.
    """
    own = con is None
    connection = open_search_connection(rag_path) if con is None else con
    try:
        prompts = []
        for question_id, question in questions:
            hits = retrieve(connection, question, embed_query, k, mode, rerank=rerank, candidates=candidates)
            prompts.append({"custom_id": question_id, "text": build_prompt(question, hits)})
        return prompts
    finally:
        if own:
            connection.close()
