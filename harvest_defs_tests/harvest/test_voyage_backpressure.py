"""Real-time results wait in a bounded queue: a slow consumer holds the senders back, nothing is lost."""

from __future__ import annotations

import time

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.voyage.client import VoyageCredentials
from harvest_defs.harvest.voyage.packing import EmbedInput
from harvest_defs.harvest.voyage.realtime import QUEUED_PER_SLOT, RealtimeEmbedder

KEY = "pa-test-key"


def _inputs(n: int) -> list[EmbedInput]:
    return [EmbedInput(f"t{i}", f"text number {i}", f"h{i}", f"text number {i}", 4) for i in range(n)]


def _embedder(emulator: EmulatorServer) -> RealtimeEmbedder:
    creds = VoyageCredentials(KEY, emulator.voyage_base_url)
    return RealtimeEmbedder(creds, "voyage-3.5", max_concurrency=1, batch_size=1, rpm=10**6, tpm=10**9)


def test_a_paused_consumer_stops_the_senders_and_then_gets_every_row(emulator: EmulatorServer) -> None:
    calls = emulator.stats().get("voyage_embed_calls", 0)
    tables = _embedder(emulator).embed(_inputs(60), rows_per_table=1)  # one request = one text = one table
    first = next(tables)
    time.sleep(1.5)  # the consumer is busy: an unbounded queue would take all 60 responses meanwhile
    sent = emulator.stats().get("voyage_embed_calls", 0) - calls
    assert sent <= 1 + QUEUED_PER_SLOT + 2, sent  # the first, the queue (1 slot x 4), one waiting to enter
    ids = [*first.column("embedding_id").to_pylist()]
    for table in tables:
        ids.extend(table.column("embedding_id").to_pylist())
    assert sorted(ids) == sorted(f"t{i}" for i in range(60))
    assert emulator.stats().get("voyage_embed_calls", 0) - calls == 60


def test_closing_the_stream_early_with_a_full_queue_returns_promptly(emulator: EmulatorServer) -> None:
    tables = _embedder(emulator).embed(_inputs(60), rows_per_table=1)
    next(tables)
    time.sleep(0.5)  # the queue fills up and the sender waits on it
    started = time.monotonic()
    tables.close()  # dlt stops the resource: the worker must not hang on the full queue
    assert time.monotonic() - started < 5
