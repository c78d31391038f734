"""Streaming inputs: read any prompt/text source in fixed-size windows, and remember ids on disk.

Why windows of a fixed size, counted from the start of the input: everything per request (validation,
hashing, batch splitting, manifests, ledger rows) happens one window at a time, so memory is bounded by
the window, not the input. And because a window's boundaries depend only on input positions, a re-run
after a crash mid-stream recomputes exactly the same windows, hence the same chunks (each window's
requests are sorted by hash and split greedily, as before), and every chunk finds its ledger row instead
of paying twice.

Sources: any iterable of rows (a list or a generator of str / mappings), a pyarrow ``Table`` or
``RecordBatchReader``, a Polars ``DataFrame`` or ``LazyFrame``, or a Parquet file (``Path``, or a ``str``
ending in ``.parquet``). Columnar rows become dicts one record batch at a time, nulls dropped (a null
``custom_id`` means "none given", like a missing key).

Why :class:`SeenIds` is SQLite on disk: duplicate-id detection must span the whole input (two prompts
named ``doc_1`` in windows 1 and 40 are still a conflict), and a Python set of 10M ids is ~1 GB.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_WINDOW = 50_000


def is_path_source(source: Any) -> bool:
    """A Parquet file given by path (a bare ``str`` only when it names a ``.parquet`` file)."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and source.endswith(".parquet")


def _module(source: Any) -> str:
    return type(source).__module__.split(".")[0]


def reiterable(source: Any) -> bool:
    """Can the source be read twice (a strict pre-pass validates it all before any request)?"""
    if is_path_source(source) or isinstance(source, Sequence):
        return True
    import pyarrow as pa

    if isinstance(source, pa.Table):
        return True
    return _module(source) == "polars"


def _records(batch: Any) -> list[dict[str, Any]]:
    """Rows of one Arrow record batch as dicts without nulls."""
    return [{k: v for k, v in row.items() if v is not None} for row in batch.to_pylist()]


def _rows(source: Any, window: int) -> Iterator[Any]:
    """Every row of ``source`` in input order, converting columnar data one record batch at a time."""
    import pyarrow as pa

    if is_path_source(source):
        import pyarrow.parquet as pq

        with pq.ParquetFile(Path(source)) as file:
            for batch in file.iter_batches(batch_size=window):
                yield from _records(batch)
        return
    if isinstance(source, pa.Table):
        for batch in source.to_batches(max_chunksize=window):
            yield from _records(batch)
        return
    if isinstance(source, pa.RecordBatchReader):
        for batch in source:
            yield from _records(batch)
        return
    if _module(source) == "polars":
        import polars as pl

        if isinstance(source, pl.LazyFrame):
            for frame in source.collect_batches(chunk_size=window):
                for batch in frame.to_arrow().to_batches():
                    yield from _records(batch)
            return
        if isinstance(source, pl.DataFrame):
            for frame in source.iter_slices(window):
                for batch in frame.to_arrow().to_batches():
                    yield from _records(batch)
            return
    if isinstance(source, str | bytes) or not isinstance(source, Iterable):
        raise TypeError(
            "expected an iterable of rows, a pyarrow Table/RecordBatchReader, a Polars DataFrame/LazyFrame "
            f"or a Parquet path, got {type(source).__name__}"
        )
    yield from source


def iter_windows(source: Any, window: int = DEFAULT_WINDOW) -> Iterator[list[Any]]:
    """Lists of exactly ``window`` rows (the last may be shorter), in input order: deterministic."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    current: list[Any] = []
    for row in _rows(source, window):
        current.append(row)
        if len(current) == window:
            yield current
            current = []
    if current:
        yield current


class SeenIds:
    """A set of ids on disk (SQLite, one temp file): bounded memory whatever the number of ids.

    ``check_and_add`` answers, for one window, which ids an *earlier* window already had; ids repeated
    inside the window itself are the caller's (per-window) business.
    """

    def __init__(self, directory: Path | str | None = None) -> None:
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="seen_ids_", suffix=".sqlite", dir=directory)
        os.close(fd)
        self.path = Path(name)
        self._con = sqlite3.connect(name, isolation_level=None)
        # A scratch file: no journal, no fsync; 16 MB of page cache (the OS caches the rest of the file).
        self._con.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-16384;"
            "CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TEMP TABLE w (id TEXT PRIMARY KEY) WITHOUT ROWID;"
        )
        self.count = 0

    def check_and_add(self, ids: Iterable[str]) -> set[str]:
        """Ids among ``ids`` seen in an earlier call; all of ``ids`` count as seen afterwards."""
        con = self._con
        con.execute("BEGIN")
        con.executemany("INSERT OR IGNORE INTO w VALUES (?)", ((i,) for i in ids))
        # CROSS JOIN: the window outside, one key probe of ``seen`` per id (never a scan of ``seen``).
        earlier = {row[0] for row in con.execute("SELECT w.id FROM w CROSS JOIN seen ON seen.id = w.id")}
        cursor = con.execute("INSERT OR IGNORE INTO seen SELECT id FROM w")
        self.count += cursor.rowcount
        con.execute("DELETE FROM w")
        con.execute("COMMIT")
        return earlier

    def close(self) -> None:
        self._con.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
