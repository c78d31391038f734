"""The rerank step of ``rag_answers``: off, real-time (cached), or the Voyage Batch API for large sets.

``RagResource.rerank`` turns it off; below ``rerank_batch_threshold`` questions each question is reranked
in real time behind the on-disk ``RerankCache`` (why real time is the default: ``defs/assets/answers.py``);
at or above it — or while a rerank batch of the set is still open — through ``rag/rerank_batch.py``: this
run loads the rerank batches that ended into the cache, *defers* the questions whose ranking is still
unknown (their answer prompts wait) and submits their rerank requests; ``voyage_batch_sensor`` requests
``rag_answers`` again when a rerank batch ends, and that run sends the deferred questions to Claude.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harvest_defs.defs.batches import has_open_batches, poll_ended_batches
from harvest_defs.defs.resources import HarvestStoreResource, RagResource, VoyageResource


@dataclass
class RerankStep:
    """What the step does this run and what it did (the asset's metadata)."""

    mode: str  # "off" | "realtime" | "batch"
    reranker: Any = None
    batches: Any = None  # RerankBatches in batch mode
    collected: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    given_up: int = 0  # rerank requests that failed in every attempt: answered in the fused order
    given_up_reason: str | None = None

    def deferred(self) -> set[str]:
        """Questions whose ranking is in a batch still (batch mode only): not to be answered yet."""
        return set(getattr(self.reranker, "deferred", set()))

    def submit(self, partition_key: str) -> None:
        """Batch mode: submit what is still to rerank; requests given up are answered in fused order."""
        if self.batches is not None and self.reranker.pending:
            self.submitted = self.batches.submit(self.reranker.pending, partition_key)
            for key in self.batches.exhausted:
                self.reranker.pending.pop(key, None)
            self.given_up = len(self.batches.exhausted)
            self.given_up_reason = self.batches.given_up_reason

    def metadata(self) -> dict[str, Any]:
        cache = getattr(self.reranker, "cache", self.reranker)
        return {
            "reranked": self.mode != "off",
            "rerank_mode": self.mode,
            # Real-time rerank requests this run paid for / rankings read from the cache (None: rerank off).
            "rerank_requests": getattr(cache, "calls", None) if self.mode != "off" else None,
            "rerank_cached": getattr(cache, "hits", None) if self.mode != "off" else None,
            "rerank_questions_deferred": len(self.deferred()) if self.mode == "batch" else None,
            "rerank_batches_collected": self.collected or None,
            "rerank_batches_pending": self.submitted or None,
            # Recorded, not just logged: a question answered without its rerank says so on the asset page.
            "rerank_given_up": self.given_up or None,
            "rerank_given_up_reason": self.given_up_reason,
        }


def rerank_step(
    rag: RagResource,
    voyage: VoyageResource,
    store: HarvestStoreResource,
    questions: int,
    partition_key: str,
    log: Any,
) -> RerankStep:
    """The step for a set of ``questions``; in batch mode the ended rerank batches are loaded first."""
    if not rag.rerank:
        return RerankStep("off")
    from harvest_defs.rag.rerank import RerankCache
    from harvest_defs.rag.rerank_batch import RERANK_PROVIDER

    ledger = store.ledger()
    threshold = rag.rerank_batch_threshold
    batch = (threshold > 0 and questions >= threshold) or has_open_batches(ledger, RERANK_PROVIDER)
    api_key, base_url = voyage.api_key, voyage.resolved_base_url()
    if not batch:
        from harvest_defs.rag.rerank import voyage_reranker

        inner = voyage_reranker(rag.rerank_model, api_key=api_key, base_url=base_url)
        return RerankStep("realtime", RerankCache(inner, _cache_dir(store), rag.rerank_model))
    from harvest_defs.rag.rerank_batch import DeferredReranker, RerankBatches

    cache = RerankCache(_no_realtime, _cache_dir(store), rag.rerank_model)
    batches = RerankBatches(
        cache, ledger=ledger, raw_dir=store.raw_dir, api_key=api_key, base_url=base_url, log=log.info
    )
    step = RerankStep("batch", DeferredReranker(cache), batches)
    for ended in poll_ended_batches(ledger, RERANK_PROVIDER, batches.poll, log, partition_key):
        batches.collect(ended.batch_id)  # the cache files are the load: written atomically
        ledger.mark_collected(ended.batch_id)
        step.collected.append(ended.batch_id)
    return step


def _cache_dir(store: HarvestStoreResource) -> Any:
    return store.raw_dir / "voyage" / "rerank"


def _no_realtime(query: str, hits: Any, k: int) -> Any:
    raise AssertionError("batch mode never reranks in real time")  # DeferredReranker reads the cache only
