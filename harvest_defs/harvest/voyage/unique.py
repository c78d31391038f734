"""One row per ``embedding_id`` per load: the promise that lets dlt skip its dedup pass at merge.

Why it matters for memory: without the promise, dlt's merge runs ``ROW_NUMBER() OVER (PARTITION BY
embedding_id)`` over the whole staging table, and DuckDB's window operator holds every row — 1024 floats
each — at once (measured: ~1.2 GB above the extract for 50k vectors; with a 512 MB ``memory_limit`` it
fails with an out-of-memory error instead of spilling). Skipping it leaves inserts and a key-only join,
which DuckDB streams and spills.

Where a repeat can come from in one run: the windows themselves never repeat an id (``stream.py``), but
the Batch API path also collects batches an *earlier* run left ended-uncollected, whose ids may be ones
this run embedded again. The first occurrence wins: this run's real-time and cached rows are yielded
before old batches are collected, so the freshest row is kept. Ids are remembered on disk
(:class:`~harvest_defs.harvest.streaming.SeenIds`): bounded memory at millions of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from harvest_defs.harvest.dedup import unique_rows


def unique_embeddings(
    tables: Iterable[pa.Table], scratch_dir: Path | str | None = None
) -> Iterator[pa.Table]:
    """``tables`` with every ``embedding_id`` already yielded (earlier table or earlier row) dropped."""
    return unique_rows(tables, "embedding_id", scratch_dir)
