"""Contextual retrieval: one Message Batch request per passage, the document read from the prompt cache.

Against the emulator through the real anthropic SDK and the chain's harvester (ledger, raw results).
"""

from __future__ import annotations

from pathlib import Path

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude import ClaudeBatchHarvester
from harvest_defs.rag.chunking import chunk_document
from harvest_defs.rag.contextual import (
    DEFAULT_CONTEXT_MODEL,
    context_prompts,
    contextual_text,
    situate_chunks,
)

# ~6,000 characters (~1,500 tokens): over the 1,024-token cache minimum of the context model.
DOCUMENT = "# Zephyr plan\n\nThe Zephyr plan is our mid-tier offering for growing teams.\n\n" + "\n\n".join(
    f"## Limit {i}\n\n"
    + " ".join(f"Rule {i}.{j} caps resource {j} at {i * j + 3} units per hour." for j in range(12))
    for i in range(8)
)


def test_every_passage_reads_the_cached_document_and_a_rerun_sends_nothing(
    tmp_path: Path, api_env: EmulatorServer
) -> None:
    chunks = chunk_document("product__zephyr", DOCUMENT, max_tokens=80, overlap_tokens=10)
    assert len(chunks) >= 8
    harvester = ClaudeBatchHarvester(ledger_path=tmp_path / "ledger.sqlite", raw_dir=tmp_path / "raw")
    prompts = context_prompts(chunks, {"product__zephyr": DOCUMENT})
    assert len({p["cached_prefix"] for p in prompts}) == 1  # the same first block for every passage

    contexts, report = situate_chunks(
        harvester,
        chunks,
        {"product__zephyr": DOCUMENT},
        model=DEFAULT_CONTEXT_MODEL,
        poll_interval=0.2,
        timeout=60,
    )
    assert report.requests_sent == len(chunks) and report.failed == 0
    assert set(contexts) == {c.chunk_id for c in chunks}
    # The emulator "writes" the document's leading sentences: the context names the plan, which the
    # passages themselves never do — what makes contextual retrieval find "the Zephyr plan's limit".
    assert all("Zephyr" in text for text in contexts.values())
    assert all("Zephyr" not in c.content for c in chunks[1:])
    assert report.cache_read_input_tokens > 0, report
    assert report.cache_creation_input_tokens > 0
    assert report.cache_saving_usd > 0 and report.usd > 0
    stats = api_env.stats()
    assert stats.get("anthropic_batch_requests") == len(chunks)
    assert stats.get("anthropic_cache_read_input_tokens", 0) == report.cache_read_input_tokens > 0

    again, second = situate_chunks(
        harvester, chunks, {"product__zephyr": DOCUMENT}, poll_interval=0.2, timeout=60
    )
    assert again == contexts and second.requests_sent == 0 and second.requests_cached == len(chunks)
    assert api_env.stats().get("anthropic_batch_requests") == len(chunks), "a re-run pays nothing"
    first = chunks[1]
    assert contextual_text(contexts[first.chunk_id], first.text).endswith(first.text)
