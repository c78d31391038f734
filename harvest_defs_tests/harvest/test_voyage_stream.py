"""Voyage over a stream: a generator / Polars / Parquet source embeds exactly what the list does.

Real voyageai SDK over HTTP to the session's emulator, real dlt pipelines into DuckDB; small windows so
the inputs span several, with an explicit id reused across windows and plain strings repeated.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.pipeline import create_duckdb_pipeline
from harvest_defs.harvest.voyage import voyage_embeddings_batch
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY


def _texts(n: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        if i % 9 == 4:
            out.append({"text": f"a repeated plain text {i // 9 % 2}"})  # no id: same text, same id
        elif i % 13 == 6:
            out.append({"id": "dup", "text": f"dup text {i}"})  # reused in windows 0, 1, 3: first wins
        else:
            out.append({"id": f"t_{i}", "text": f"text number {i} about ducks"})
    return out


def run_realtime(emulator: EmulatorServer, work: Path, source: Any, window: int = 8) -> dict[str, Any]:
    """One real-time run of ``source`` into ``work``: the texts it sent and the rows it left (shared with
    ``test_stream_extract_memory``)."""
    before = emulator.stats()
    pipeline = create_duckdb_pipeline(
        "vs", "vec", destination_path=str(work / "w.duckdb"), pipelines_dir=str(work / "pipes")
    )
    pipeline.run(
        voyage_embeddings_batch(
            source,
            api_key=TEST_VOYAGE_KEY,
            base_url=emulator.voyage_base_url,
            mode="realtime",
            output_dimension=256,
            raw_dir=work / "raw",
            window=window,
        )
    )
    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT embedding_id, text, text_hash FROM vec.voyage_embeddings ORDER BY embedding_id"
        ).fetchall()
    return {"texts_sent": emulator.stats()["voyage_texts"] - before.get("voyage_texts", 0), "rows": rows}


def test_generator_polars_and_parquet_embed_what_the_list_embeds(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    texts = _texts(40)
    parquet = tmp_path / "texts.parquet"
    pq.write_table(pa.Table.from_pylist(texts), parquet, row_group_size=5)
    sources = {
        "list": texts,
        "generator": (t for t in texts),
        "polars": pl.DataFrame(texts),
        "parquet": parquet,
    }
    results = {name: run_realtime(emulator, tmp_path / name, source) for name, source in sources.items()}
    for name, result in results.items():
        assert result == results["list"], name
    rows = results["list"]["rows"]
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) and "dup" in ids
    assert [r[1] for r in rows if r[0] == "dup"] == ["dup text 6"]  # the first occurrence won
    # 40 inputs: 4 occurrences (#4, #13, #22, #31) of 2 plain texts, 3 "dup"s -> 33 t_ + 2 plain + 1 dup
    assert len(rows) == results["list"]["texts_sent"] == 36


def test_each_window_logs_progress_with_counts_while_the_generator_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from harvest_defs.harvest.voyage.settings import model_spec
    from harvest_defs.harvest.voyage.stream import prepare_windows

    def texts() -> Any:
        for i in range(25):
            yield {"id": "dup" if i in (3, 17) else f"t{i}", "text": f"text {i}"}

    caplog.set_level(logging.INFO, logger="harvest_defs.harvest.voyage")
    kept = []
    for prepared in prepare_windows(
        texts(), model_spec("voyage-3.5"), truncation=True, strict=False, window=10
    ):
        kept.append(len(prepared.inputs))
        assert (
            caplog.records[-1].getMessage().startswith(f"voyage stream: {min(10 * len(kept), 25)} texts read")
        )
    assert kept == [10, 9, 5]  # the second "dup" (window 2) is rejected: an earlier window sent it
    lines = [
        r.getMessage().split("; ")[0] for r in caplog.records if r.getMessage().startswith("voyage stream")
    ]
    assert lines == [
        "voyage stream: 10 texts read in 1 window(s), 10 to embed or reuse, 0 rejected",
        "voyage stream: 20 texts read in 2 window(s), 19 to embed or reuse, 1 rejected",
        "voyage stream: 25 texts read in 3 window(s), 24 to embed or reuse, 1 rejected",
    ]
