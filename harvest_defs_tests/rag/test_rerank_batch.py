"""Voyage rerank batches (``rag/rerank_batch.py``) on the emulator: the give-up path and crash adoption.

Both are the paths that decide whether a rerank is paid for twice or never finishes, so they run through
the real ``openai`` SDK (the Voyage Batch API), the real SQLite ledger and the real on-disk cache. The
failures are the emulator's documented ones: ``batch_errored_rate`` makes every line of a batch created
while it is on fail (the line goes to the batch's error file with status 500, api_contracts.md §3.2), and
the crash is a run that dies after ``batches.create`` answered but before the ledger recorded the id — the
state a SIGKILL at that moment leaves (the reservation and the uploaded file id are on disk, the id not).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harvest_defs.defs.answers_rerank import RerankStep
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.ledger import COLLECTED, BatchLedger
from harvest_defs.rag.rerank import RerankCache
from harvest_defs.rag.rerank_batch import MAX_ATTEMPTS, RERANK_PROVIDER, DeferredReranker, RerankBatches
from harvest_defs.rag.search import Hit

MODEL = "rerank-2.5"
QUESTIONS = {
    "What do ducks eat?": ["Geese migrate in V formations.", "Ducks eat pondweed and insects.", "Tea."],
    "How do geese migrate?": ["Ducks eat pondweed.", "Coffee is ground.", "Geese migrate in V formations."],
}


def _hits(texts: list[str]) -> list[Hit]:
    return [Hit(f"doc{n}--{n:012x}", f"doc{n}", text, 1.0 / (n + 1)) for n, text in enumerate(texts)]


def _no_realtime(query: str, hits: Any, k: int) -> Any:
    raise AssertionError("batch mode never reranks in real time")


class Run:
    """What one ``rag_answers`` run does with rerank batches, without Dagster: fresh objects per run."""

    def __init__(self, home: Path, emulator: EmulatorServer, ledger: BatchLedger | None = None) -> None:
        self.ledger = ledger or BatchLedger(home / "ledger.sqlite")
        self.cache = RerankCache(_no_realtime, home / "raw" / "voyage" / "rerank", MODEL)
        self.batches = RerankBatches(
            self.cache,
            ledger=self.ledger,
            raw_dir=home / "raw",
            api_key="pa-test",
            base_url=emulator.voyage_base_url,
        )
        self.reranker = DeferredReranker(self.cache)

    def rank(self) -> dict[str, list[str]]:
        """Each question's top 2 (reranked if cached, else the fused order and the request kept)."""
        return {q: [h.text for h in self.reranker(q, _hits(texts), 2)] for q, texts in QUESTIONS.items()}

    def collect_ended(self) -> list[str]:
        """The sensor's part: load every ended rerank batch into the cache, mark it collected."""
        collected = []
        for row in self.ledger.in_flight(RERANK_PROVIDER) + self.ledger.ended_uncollected(RERANK_PROVIDER):
            if self.batches.poll(str(row.batch_id)).ended:
                self.batches.collect(str(row.batch_id))
                self.ledger.mark_collected(str(row.batch_id))
                collected.append(str(row.batch_id))
        return collected


def _wait_ended(run: Run, batch_ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    while not all(run.batches.poll(b).ended for b in batch_ids):
        assert time.monotonic() < deadline, f"rerank batches {batch_ids} never ended"
        time.sleep(0.1)


@pytest.fixture
def fast(emulator: EmulatorServer) -> EmulatorServer:
    emulator.configure(batch_processing_seconds=0)
    return emulator


def test_a_rerank_batch_whose_lines_fail_is_retried_then_given_up_with_a_recorded_reason(
    fast: EmulatorServer, tmp_path: Path
) -> None:
    """Attempt n+1 is a new batch only after attempt n was collected without the rankings; after
    MAX_ATTEMPTS the requests are given up (``exhausted``, with a reason naming every batch) and never
    sent again: the questions get the fused order instead of waiting forever."""
    fast.configure(batch_errored_rate=1.0)  # decided per line when the batch is created
    created: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        run = Run(tmp_path, fast)
        run.collect_ended()
        fused = run.rank()
        ids = run.batches.submit(run.reranker.pending, "questions")
        assert len(ids) == 1 and ids[0] not in created, f"attempt {attempt}: one new batch"
        assert not run.batches.exhausted and run.batches.given_up_reason is None
        assert set(run.reranker.deferred) == set(QUESTIONS)
        assert fused == {q: texts[:2] for q, texts in QUESTIONS.items()}
        created += ids
        _wait_ended(run, ids)
    assert fast.stats()["voyage_batches_created"] == MAX_ATTEMPTS

    fast.configure(batch_errored_rate=0.0)  # would succeed now: the give-up must not be an accident
    run = Run(tmp_path, fast)
    assert run.collect_ended() == created[-1:]
    run.rank()
    assert run.batches.submit(run.reranker.pending, "questions") == []
    assert len(run.batches.exhausted) == len(QUESTIONS) == len(run.reranker.pending)
    reason = run.batches.given_up_reason or ""
    assert f"{len(QUESTIONS)} rerank request(s)" in reason and f"each of {MAX_ATTEMPTS}" in reason
    assert all(batch_id in reason for batch_id in created), reason
    assert f"(last: {len(QUESTIONS)}× 500 Internal Server Error)" in reason, "the API's own error"
    assert fast.stats()["voyage_batches_created"] == MAX_ATTEMPTS, "never a 4th batch"
    assert all(row.status == COLLECTED for row in run.ledger.batches(RERANK_PROVIDER))

    again = Run(tmp_path, fast)  # the next run, as rag_answers does it: given up again, at no cost
    before = fast.stats()
    again.rank()
    step = RerankStep("batch", again.reranker, again.batches)
    step.submit("questions")
    assert step.submitted == [] and not step.deferred(), "the questions are asked, in the fused order"
    assert again.batches.exhausted == run.batches.exhausted
    meta = step.metadata()  # what the asset page shows
    assert meta["rerank_given_up"] == len(QUESTIONS) and meta["rerank_given_up_reason"] == reason
    after = fast.stats()
    assert after.get("voyage_batches_created") == before.get("voyage_batches_created")
    assert after.get("voyage_files_uploaded") == before.get("voyage_files_uploaded")


def test_a_failed_attempt_that_then_succeeds_fills_the_cache_on_the_second_batch(
    fast: EmulatorServer, tmp_path: Path
) -> None:
    """The retry is real: attempt 1 (lines fine again) answers every question from the cache."""
    fast.configure(batch_errored_rate=1.0)
    first = Run(tmp_path, fast)
    first.rank()
    _wait_ended(first, first.batches.submit(first.reranker.pending, "questions"))
    fast.configure(batch_errored_rate=0.0)
    second = Run(tmp_path, fast)
    second.collect_ended()
    second.rank()
    _wait_ended(second, second.batches.submit(second.reranker.pending, "questions"))
    third = Run(tmp_path, fast)
    third.collect_ended()
    ranked = third.rank()
    assert not third.reranker.pending and third.cache.hits == len(QUESTIONS)
    assert ranked["What do ducks eat?"][0] == "Ducks eat pondweed and insects."
    assert ranked["How do geese migrate?"][0] == "Geese migrate in V formations."
    assert fast.stats()["voyage_batches_created"] == 2


class CrashAfterCreate(BatchLedger):
    """The ledger of a run that dies right after the API created the batch, before the id is recorded."""

    def record_created(self, *args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed between batches.create and record_created")


def test_a_run_that_crashed_after_creating_its_rerank_batch_is_adopted_not_paid_again(
    fast: EmulatorServer, tmp_path: Path
) -> None:
    crashed = Run(tmp_path, fast, CrashAfterCreate(tmp_path / "ledger.sqlite"))
    crashed.rank()
    with pytest.raises(SystemExit, match="killed between"):
        crashed.batches.submit(crashed.reranker.pending, "questions")
    stats = fast.stats()
    assert (stats["voyage_batches_created"], stats["voyage_files_uploaded"]) == (1, 1)
    [orphan] = crashed.ledger.batches(RERANK_PROVIDER)
    assert orphan.batch_id is None, "the ledger never heard of the batch"

    restarted = Run(tmp_path, fast)  # the next run: the same questions over the same candidates
    assert restarted.collect_ended() == []  # nothing in flight that the ledger knows of
    restarted.rank()
    [adopted] = restarted.batches.submit(restarted.reranker.pending, "questions")
    stats = fast.stats()
    assert (stats["voyage_batches_created"], stats["voyage_files_uploaded"]) == (1, 1), "paid once"
    [row] = restarted.ledger.batches(RERANK_PROVIDER)
    assert row.batch_id == adopted

    _wait_ended(restarted, [adopted])
    done = Run(tmp_path, fast)
    assert done.collect_ended() == [adopted]
    done.rank()
    assert not done.reranker.pending and done.cache.hits == len(QUESTIONS)
    assert fast.stats()["voyage_batches_created"] == 1
