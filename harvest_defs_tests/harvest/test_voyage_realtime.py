"""Real-time harvester end to end: real voyageai SDK → emulator → real dlt pipeline → DuckDB file."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pipeline import create_duckdb_pipeline
from harvest_defs.harvest.voyage import voyage_embeddings_batch

KEY = "pa-test-key"


def _pipeline(tmp_path: Path) -> Any:
    return create_duckdb_pipeline(
        "voyage_test", "harvest", str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "dlt")
    )


def _query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _texts(n: int, prefix: str = "doc") -> list[dict[str, str]]:
    return [
        {"id": f"{prefix}-{i}", "text": f"{prefix} {i} talks about topic {i % 13} and harvests"}
        for i in range(n)
    ]


def test_1001_texts_are_split_loaded_native_and_normalized(tmp_path: Path, emulator: EmulatorServer) -> None:
    pipeline = _pipeline(tmp_path)
    texts = _texts(1001)
    pipeline.run(
        voyage_embeddings_batch(texts, api_key=KEY, base_url=emulator.voyage_base_url, mode="realtime")
    )
    stats = emulator.stats()
    assert stats["voyage_embed_calls"] == 2 and stats.get("voyage_400s", 0) == 0
    [(rows, typ, tokens)] = _query(
        tmp_path,
        "SELECT count(*), any_value(typeof(embedding)), sum(total_tokens) FROM harvest.voyage_embeddings",
    )
    assert (rows, typ) == (1001, "FLOAT[1024]")
    assert tokens == stats["voyage_tokens"]  # per-text shares sum to what was billed
    per_text = dict(_query(tmp_path, "SELECT embedding_id, total_tokens FROM harvest.voyage_embeddings"))
    assert all(per_text[t["id"]] == math.ceil(len(t["text"]) / 4) for t in texts)  # exact per text
    [(col_type,)] = _query(
        tmp_path,
        "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_name = 'voyage_embeddings' "
        "AND column_name = 'embedding'",
    )
    assert col_type == "FLOAT[1024]"
    vectors = np.array([r[0] for r in _query(tmp_path, "SELECT embedding FROM harvest.voyage_embeddings")])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_rerun_sends_nothing_and_only_new_texts_are_sent(tmp_path: Path, emulator: EmulatorServer) -> None:
    pipeline = _pipeline(tmp_path)
    texts = _texts(50)
    kwargs: dict[str, Any] = {"api_key": KEY, "base_url": emulator.voyage_base_url, "mode": "realtime"}
    pipeline.run(voyage_embeddings_batch(texts, output_dimension=256, **kwargs))
    calls = emulator.stats()["voyage_embed_calls"]
    pipeline.run(voyage_embeddings_batch(texts, output_dimension=256, **kwargs))
    assert emulator.stats()["voyage_embed_calls"] == calls  # re-run: 0 embed calls
    sent_before = emulator.stats()["voyage_texts"]
    new = _texts(3, prefix="new")
    same_text_new_id = {"id": "copy-0", "text": texts[0]["text"]}
    pipeline.run(voyage_embeddings_batch([*texts, *new, same_text_new_id], output_dimension=256, **kwargs))
    assert emulator.stats()["voyage_texts"] - sent_before == 3  # only the new texts; the copy costs nothing
    [(rows, typ)] = _query(
        tmp_path, "SELECT count(*), any_value(typeof(embedding)) FROM harvest.voyage_embeddings"
    )
    assert (rows, typ) == (54, "FLOAT[256]")
    [(same,)] = _query(
        tmp_path,
        "SELECT a.embedding = b.embedding FROM harvest.voyage_embeddings a, harvest.voyage_embeddings b "
        "WHERE a.embedding_id = 'doc-0' AND b.embedding_id = 'copy-0'",
    )
    assert same


def test_requests_over_the_token_limit_are_split(tmp_path: Path, emulator: EmulatorServer) -> None:
    # voyage-3-large: 120k tokens per request; 8 texts of ~25k tokens = 200k tokens
    texts = [{"id": f"big-{i}", "text": f"{i} " + "lorem ipsum dolor sit amet " * 3700} for i in range(8)]
    pipeline = _pipeline(tmp_path)
    pipeline.run(
        voyage_embeddings_batch(
            texts, model="voyage-3-large", api_key=KEY, base_url=emulator.voyage_base_url, mode="realtime"
        )
    )
    stats = emulator.stats()
    assert stats["voyage_embed_calls"] >= 2 and stats.get("voyage_400s", 0) == 0
    assert _query(tmp_path, "SELECT count(*) FROM harvest.voyage_embeddings") == [(8,)]


def test_over_long_text_truncated_or_reported_while_the_rest_is_embedded(
    tmp_path: Path, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    long_text = "contract clause " * 6000  # 96k chars ~ 24k tokens > voyage-law-2's 16k context
    texts = [{"id": "long", "text": long_text}, {"id": "short", "text": "a short clause"}]
    kwargs: dict[str, Any] = {"model": "voyage-law-2", "api_key": KEY, "base_url": emulator.voyage_base_url}
    pipeline = _pipeline(tmp_path)
    with caplog.at_level(logging.ERROR, logger="harvest_defs.harvest.voyage"):
        pipeline.run(voyage_embeddings_batch(texts, truncation=False, **kwargs))
    assert _query(tmp_path, "SELECT embedding_id FROM harvest.voyage_embeddings") == [("short",)]
    assert any("long" in r.getMessage() and "truncation=False" in r.getMessage() for r in caplog.records)
    pipeline.run(voyage_embeddings_batch(texts, truncation=True, **kwargs))
    rows = dict(_query(tmp_path, "SELECT embedding_id, total_tokens FROM harvest.voyage_embeddings"))
    assert set(rows) == {"long", "short"} and rows["long"] == 16_000
    [(stored,)] = _query(tmp_path, "SELECT text FROM harvest.voyage_embeddings WHERE embedding_id = 'long'")
    assert stored == long_text  # the caller's text is kept; only what was sent was cut


def test_rate_limited_server_429s_are_absorbed(tmp_path: Path, emulator: EmulatorServer) -> None:
    """300 RPM / 1M TPM, 100 ms latency, and the quota already used up by another client 54 s ago (the
    pipeline must reach the server before the window frees: 6 s, enough on a loaded worker)."""
    emulator.configure(voyage_rpm=300, voyage_tpm=1_000_000, latency_ms=100)
    window = emulator.state.windows["voyage"]
    with emulator.state.lock:
        earlier = time.monotonic() - 54.0
        for _ in range(300):
            window.events.append((earlier, 0))
    pipeline = _pipeline(tmp_path)
    texts = _texts(600)
    pipeline.run(
        voyage_embeddings_batch(
            texts,
            api_key=KEY,
            base_url=emulator.voyage_base_url,
            mode="realtime",
            rpm=300,
            tpm=1_000_000,
            batch_size=20,
            max_concurrency=4,
        )
    )
    stats = emulator.stats()
    assert stats["voyage_429s"] >= 1  # the server did push back...
    assert _query(tmp_path, "SELECT count(*) FROM harvest.voyage_embeddings") == [
        (600,)
    ]  # ...and nothing failed
    assert stats["voyage_embed_calls"] == 30


def test_server_errors_and_dropped_connections_are_retried(tmp_path: Path, emulator: EmulatorServer) -> None:
    emulator.configure(fault_rate_500=0.3, fault_rate_drop=0.1, fault_paths=["/v1/embeddings"])
    pipeline = _pipeline(tmp_path)
    pipeline.run(
        voyage_embeddings_batch(
            _texts(200), api_key=KEY, base_url=emulator.voyage_base_url, mode="realtime", batch_size=10
        )
    )
    stats = emulator.stats()
    assert stats.get("faults_500", 0) + stats.get("faults_drop", 0) > 0
    assert _query(tmp_path, "SELECT count(DISTINCT embedding_id) FROM harvest.voyage_embeddings") == [(200,)]


def test_a_wrong_key_stops_the_run_loudly(tmp_path: Path, emulator: EmulatorServer) -> None:
    emulator.configure(valid_api_keys=[KEY])
    with pytest.raises(Exception, match="API key is invalid") as info:
        _pipeline(tmp_path).run(
            voyage_embeddings_batch(_texts(5), api_key="pa-wrong-key", base_url=emulator.voyage_base_url)
        )
    assert "pa-wrong-key" not in str(info.value)  # the key never appears in the error
    assert emulator.stats()["voyage_401s"] == 1  # not retried, not one error per text
