"""Bounded extract memory for streams (Voyage and Claude), and the caches it must keep, against real parts.

- Streaming many windows through a real dlt pipeline (real voyageai SDK -> emulator -> DuckDB): the
  inputs of finished windows are freed while the stream is still read (once, every window's
  ``EmbedInput`` list stayed alive until the extract ended: dlt pinned the frames of each per-window
  ``pipeline.sql_client()`` call; ``cache.Destination``), and the one client per run still finds every
  window's rows: a re-run sends nothing, a copy under a new id is free.
- The same for Claude: each window's wanted table (ids, hashes, prompts) is freed before the next window
  (it was pinned the same way by ``_not_loaded``'s per-window client); Arrow's live bytes stay flat.
- ``VectorStore.lookup`` (hashes first, vectors only from files holding a match) returns exactly the
  stored vectors for the same settings and nothing else, over several Parquet files.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pipeline import create_duckdb_pipeline
from harvest_defs.harvest.voyage.arrow import embeddings_table
from harvest_defs.harvest.voyage.packing import EmbedInput
from harvest_defs.harvest.voyage.store import VectorStore
from harvest_defs_tests.harvest.test_voyage_stream import run_realtime

WINDOW = 10
N = 40


def _live_inputs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, EmbedInput))


def _texts(live: list[int]) -> Iterator[dict[str, str]]:
    """N texts; at each window's first row, how many ``EmbedInput`` objects are alive."""
    for i in range(N):
        if i % WINDOW == 0:
            live.append(_live_inputs())
        yield {"id": f"t{i}", "text": f"text number {i} about herons"}


def _run(emulator: EmulatorServer, work: Path, source: Any) -> int:
    """Texts sent to the emulator by one run into ``work``."""
    return int(run_realtime(emulator, work, source, window=WINDOW)["texts_sent"])


def test_finished_windows_are_freed_mid_stream_and_a_rerun_is_free(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    baseline = _live_inputs()
    live: list[int] = []
    assert _run(emulator, tmp_path, _texts(live)) == N
    assert len(live) == N // WINDOW
    # At most the window just embedded and the one being prepared; before the fix the 4th window
    # still saw the 30 inputs of windows 1-3.
    assert max(n - baseline for n in live) <= 2 * WINDOW, live
    again: list[int] = []
    copy = {"id": "copy", "text": f"text number {N - 5} about herons"}  # the last window's text, new id
    assert _run(emulator, tmp_path, [*_texts(again), copy]) == 0  # every window found its rows


def _stored(hashes: list[str], model: str = "voyage-3.5", dim: int = 4, kind: str | None = "document") -> Any:
    n = len(hashes)
    vectors = np.array([[float(h[1:]), 1.0, 2.0, float(dim)] for h in hashes], dtype=np.float32)
    if dim != 4:
        vectors = np.zeros((n, dim), dtype=np.float32)
    return embeddings_table(
        ids=[f"id-{h}" for h in hashes],
        texts=hashes,
        text_hashes=hashes,
        vectors=vectors,
        tokens=[1] * n,
        model=model,
        dim=dim,
        input_type=kind,
        processing_time_ms=0.0,
    )


def test_store_lookup_returns_the_stored_vectors_for_the_same_settings_only(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    assert store.lookup(["h1"], "voyage-3.5", 4, "document") == {}  # no file yet
    store.append(_stored(["h1", "h2", "h3"]))
    store.append(_stored(["h4", "h5"], model="voyage-3-lite"))  # other model: never returned
    store.append(_stored(["h6"], kind=None))  # other input type
    store.append(_stored(["h7"], dim=8))  # other dimension
    store.append(_stored(["h8", "h2"]))  # h2 again (same vector): returned once
    found = store.lookup(["h2", "h3", "h4", "h6", "h7", "h8", "h9"], "voyage-3.5", 4, "document")
    assert sorted(found) == ["h2", "h3", "h8"]
    for h, vector in found.items():
        assert isinstance(vector, pa.Scalar)
        assert vector.as_py() == [float(h[1:]), 1.0, 2.0, 4.0]
    assert store.lookup(["h9", "h10"], "voyage-3.5", 4, "document") == {}  # no match: no vector read
    assert sorted(store.lookup(["h6"], "voyage-3.5", 4, None)) == ["h6"]


def test_claude_windows_wanted_prompts_are_freed_mid_stream(emulator: EmulatorServer, tmp_path: Path) -> None:
    from harvest_defs.harvest.claude import claude_message_batches
    from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY

    big = 20_000  # bytes per prompt: a window's wanted table holds ~200 KB of prompts
    live: list[int] = []

    def prompts() -> Iterator[dict[str, str]]:
        for i in range(5 * WINDOW):
            if i % WINDOW == 0:
                gc.collect()
                live.append(pa.total_allocated_bytes())
            yield {"custom_id": f"p{i}", "text": f"Summarize {i}: " + "ducks " * (big // 6)}

    pipeline = create_duckdb_pipeline(
        "cm", "ai", destination_path=str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "pipes")
    )
    pipeline.run(
        claude_message_batches(
            prompts(),
            model="claude-haiku-4-5",
            max_tokens=16,
            api_key=TEST_ANTHROPIC_KEY,
            base_url=emulator.anthropic_base_url,
            poll_interval=0.2,
            ledger_path=tmp_path / "ledger.sqlite",
            raw_dir=tmp_path / "raw",
            window=WINDOW,
        )
    )
    assert len(live) == 5
    # Before the per-run client the 5th window saw the 4 earlier windows' prompts (>= 800 KB) still held.
    assert max(live) - live[0] < 2 * WINDOW * big, live
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ai.claude_messages WHERE success").fetchone() == (
            5 * WINDOW,
        )
