"""Contextual retrieval through Message Batches: Claude writes a short situating context for each passage.

Anthropic's recipe (anthropic.com/news/contextual-retrieval): for every chunk, give the model the whole
document and the chunk, ask for 50-100 tokens that situate the chunk in the document, and prepend that
context to the chunk before embedding it and before BM25-indexing it ("ACME's Q2 2023 revenue ..." instead
of "revenue grew 3%"). We run it the way this project runs everything: one Message Batch request per chunk
(50% off), the document as the first block of the user message with ``cache_control`` so every other
chunk of the same document reads it from the prompt cache (0.1× the input price) instead of paying for it
again, and the chunk after it. Requests are content-addressed by the harvester, so a re-run, a rename or
an unchanged passage never pays twice; a passage whose context failed is embedded without one.

The prompt wording is the recipe's. The cost report gives the batch price paid, the cache tokens and what
the cache saved (``harvest/pricing.estimate_cache_saving_usd``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harvest_defs.rag.chunking import Chunk

if TYPE_CHECKING:
    from harvest_defs.harvest.claude import ClaudeBatchHarvester, SubmitReport
    from harvest_defs.harvest.claude.prompts import PreparedPrompts

DEFAULT_CONTEXT_MODEL = "claude-haiku-5-5"  # the cheapest in prices.toml; caches from 1,024 tokens
CONTEXT_MAX_TOKENS = 120
CONTEXT_PARTITION = ".contexts"
DOCUMENT_TEMPLATE = "<document>\n{document}\n</document>"
CHUNK_TEMPLATE = (
    "Here is the chunk we want to situate within the whole document\n<chunk>\n{chunk}\n</chunk>\n"
    "Please give a short succinct context to situate this chunk within the overall document for the "
    "purposes of improving search retrieval of the chunk. Answer only with the succinct context and "
    "nothing else."
)


@dataclass
class ContextReport:
    """What one contextual pass cost: requests sent/cached, tokens, USD at batch prices, cache saving."""

    requests: int = 0
    requests_sent: int = 0
    requests_cached: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    usd: float = 0.0
    cache_saving_usd: float = 0.0
    batch_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "context_requests": self.requests,
            "context_requests_sent": self.requests_sent,
            "context_requests_cached": self.requests_cached,
            "context_failed": self.failed,
            "context_input_tokens": self.input_tokens,
            "context_output_tokens": self.output_tokens,
            "context_cache_read_input_tokens": self.cache_read_input_tokens,
            "context_cache_creation_input_tokens": self.cache_creation_input_tokens,
            "context_usd": round(self.usd, 6),
            "context_cache_saving_usd": round(self.cache_saving_usd, 6),
        }


def context_custom_id(chunk_id: str) -> str:
    """A Message Batch ``custom_id`` (``^[a-zA-Z0-9_-]{1,64}$``) for a passage id, which may be longer."""
    return "ctx_" + hashlib.sha256(chunk_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def context_prompts(chunks: Sequence[Chunk], documents: dict[str, str]) -> list[dict[str, str]]:
    """One prompt per passage: the whole document first (cached block), then the passage and the ask.

    The passages of one document share the exact same first block, which is what makes it a cache hit.
    """
    return [
        {
            "custom_id": context_custom_id(chunk.chunk_id),
            "cached_prefix": DOCUMENT_TEMPLATE.format(document=documents[chunk.document_id]),
            "text": CHUNK_TEMPLATE.format(chunk=chunk.content),
        }
        for chunk in chunks
        if documents.get(chunk.document_id)
    ]


def contextual_text(context: str | None, chunk_text: str) -> str:
    """What is embedded and BM25-indexed: the context, a blank line, then the passage as before."""
    return f"{context.strip()}\n\n{chunk_text}" if context and context.strip() else chunk_text


def request_contexts(
    harvester: ClaudeBatchHarvester,
    chunks: Sequence[Chunk],
    documents: dict[str, str],
    *,
    model: str = DEFAULT_CONTEXT_MODEL,
    max_tokens: int = CONTEXT_MAX_TOKENS,
    partition_key: str = CONTEXT_PARTITION,
) -> tuple[PreparedPrompts, SubmitReport]:
    """Submit the context requests not yet answered or in flight; returns at once (no waiting)."""
    prepared = harvester.prepare(context_prompts(chunks, documents), model, max_tokens)
    return prepared, harvester.submit_prepared(prepared, partition_key=partition_key)


def read_contexts(
    harvester: ClaudeBatchHarvester,
    prepared: PreparedPrompts,
    chunks: Sequence[Chunk],
    submitted: SubmitReport,
) -> tuple[dict[str, str], set[str], ContextReport]:
    """(contexts by chunk id, chunk ids whose context is still in a batch, the report) from what has ended.

    Token counts and USD are those of the current passages' contexts (paid now or by an earlier run).
    """
    import pyarrow.compute as pc

    from harvest_defs.harvest.claude.stored import StoredRowsReport
    from harvest_defs.harvest.pricing import (
        CACHE_READ_MULTIPLIER,
        CACHE_WRITE_MULTIPLIER,
        estimate_batch_usd,
        estimate_cache_saving_usd,
    )

    by_custom_id = {context_custom_id(c.chunk_id): c.chunk_id for c in chunks}
    by_hash = {r.request_hash: r.custom_id for r in prepared.requests}
    report = ContextReport(
        requests=len(prepared.requests),
        requests_sent=submitted.requests_sent,
        requests_cached=submitted.requests_cached,
        batch_ids=list(submitted.new_batch_ids),
    )
    stored = StoredRowsReport()
    contexts: dict[str, str] = {}
    for table in harvester.stored_rows(prepared.requests, stored):
        for row in table.select(["custom_id", "response", "success"]).to_pylist():
            if row["success"] and row["response"]:
                contexts[by_custom_id[row["custom_id"]]] = row["response"].strip()
            else:
                report.failed += 1
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            total = pc.sum(table.column(name)).as_py() or 0
            setattr(report, name, getattr(report, name) + int(total))
    for batch_id in stored.collected_batches:
        harvester.mark_collected(batch_id)
    pending = {by_custom_id[by_hash[h]] for h in stored.in_flight if h in by_hash}
    model = prepared.model
    # Paid: uncached input + cache reads at 0.1x + cache writes at 1.25x, and the output, at batch prices.
    billed_input = (
        report.input_tokens
        + report.cache_read_input_tokens * CACHE_READ_MULTIPLIER
        + report.cache_creation_input_tokens * CACHE_WRITE_MULTIPLIER
    )
    report.usd = estimate_batch_usd(model, round(billed_input), report.output_tokens)
    report.cache_saving_usd = estimate_cache_saving_usd(
        model, report.cache_read_input_tokens, report.cache_creation_input_tokens
    )
    return contexts, pending, report


def situate_chunks(
    harvester: ClaudeBatchHarvester,
    chunks: Sequence[Chunk],
    documents: dict[str, str],
    *,
    model: str = DEFAULT_CONTEXT_MODEL,
    max_tokens: int = CONTEXT_MAX_TOKENS,
    poll_interval: float = 1.0,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, str], ContextReport]:
    """``{chunk_id: context}`` for every passage, through one Message Batch pass (blocking until it ends).

    Blocking on purpose, for scripts and the eval (the chain submits and reads in separate runs); the
    harvester underneath is the chain's (ledger, raw results, content-addressed cache), so a re-run sends
    nothing.
    """
    prepared, submitted = request_contexts(harvester, chunks, documents, model=model, max_tokens=max_tokens)
    if submitted.batch_ids:
        harvester.wait(submitted.batch_ids, poll_interval=poll_interval, timeout=timeout)
    contexts, _, report = read_contexts(harvester, prepared, chunks, submitted)
    if log is not None:
        log(describe(report))
    return contexts, report


def describe(report: ContextReport) -> str:
    return (
        f"contextual retrieval: {report.requests} passages, {report.requests_sent} sent, "
        f"{report.requests_cached} cached, {report.failed} failed; cache read "
        f"{report.cache_read_input_tokens} tokens, ${report.usd:.4f} at batch prices, cache saving "
        f"${report.cache_saving_usd:.4f}"
    )
