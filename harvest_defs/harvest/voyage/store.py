"""Every vector we paid for, on disk before dlt sees it: the Voyage side of "raw results first".

Why a store beside the destination: the destination only holds each document's *current* vector. After
an edit is reverted (text A -> B -> A) A's vector is gone from it, and after a failed load (disk full)
the vectors of the whole run never reached it — in both cases a destination-only cache pays Voyage again.
So each embedded table is appended here (Parquet, written to a temporary name and renamed: a crash never
leaves a partial file that looks complete) before it is yielded, and lookups by text hash (with the same
model, dimension and input type) come here first.

Layout: ``<raw_dir>/voyage/vectors/<uuid>.parquet`` with ``text_hash, model, dimensions, input_type,
embedding, total_tokens``. Lookups match hashes over all files (key columns only, O(stored hashes)),
then read vectors from the files holding a match.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

STORE_COLUMNS = ("text_hash", "model", "dimensions", "input_type", "embedding", "total_tokens")


class VectorStore:
    """Content-addressed vectors: (text_hash, model, dimensions, input_type) -> embedding."""

    def __init__(self, raw_dir: Path | str) -> None:
        self.root = Path(raw_dir) / "voyage" / "vectors"

    def __repr__(self) -> str:
        return f"VectorStore({str(self.root)!r})"

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*.parquet")) if self.root.is_dir() else []

    def append(self, table: pa.Table) -> None:
        """Persist the table's vectors (an ``embedding_schema`` table); fsync'd before it is renamed in."""
        if not table.num_rows:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"{uuid.uuid4().hex}.parquet"
        tmp = final.with_name(f".{final.name}.part")
        pq.write_table(table.select(list(STORE_COLUMNS)), tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)

    def lookup(
        self, text_hashes: Iterable[str], model: str, dimensions: int, input_type: str | None
    ) -> dict[str, pa.Scalar]:
        """text_hash -> stored vector (an Arrow list scalar) for every hash the store holds.

        Two steps, so a window costs O(stored hashes), not O(stored vectors): the hashes are matched
        with only the key columns read (``filename``/``file_row_number`` say where each match is), and
        vectors are read from the files that hold a match only. One query joining on the hash read
        every stored vector (4 KB each at 1024 dims) per window: at 1M texts the 20th window scanned
        ~4 GB to find nothing (benchmarks/scale_memory.py).
        """
        files = self.files()
        wanted = pa.table({"text_hash": pa.array(sorted(set(text_hashes)), pa.string())})
        if not files or not wanted.num_rows:
            return {}
        import duckdb

        con = duckdb.connect()
        try:
            con.register("wanted", wanted)
            con.execute(
                "CREATE TEMP TABLE hits AS SELECT DISTINCT ON (s.text_hash) s.filename, s.file_row_number, "
                "s.text_hash FROM read_parquet(?, filename = true, file_row_number = true) s "
                "SEMI JOIN wanted w ON w.text_hash = s.text_hash "
                "WHERE s.model = ? AND s.dimensions = ? AND s.input_type IS NOT DISTINCT FROM ?",
                [[str(f) for f in files], model, dimensions, input_type],
            )
            holding = [row[0] for row in con.execute("SELECT DISTINCT filename FROM hits").fetchall()]
            if not holding:
                return {}
            found = con.execute(
                "SELECT h.text_hash, s.embedding "
                "FROM read_parquet(?, filename = true, file_row_number = true) s "
                "JOIN hits h ON h.filename = s.filename AND h.file_row_number = s.file_row_number",
                [sorted(holding)],
            ).to_arrow_table()
        finally:
            con.close()
        embedding = found.column("embedding")
        if not pa.types.is_fixed_size_list(embedding.type):
            embedding = embedding.cast(pa.list_(pa.float32(), dimensions))
        return dict(zip(found.column("text_hash").to_pylist(), embedding, strict=True))


def persisted(tables: Iterable[pa.Table], store: VectorStore) -> Iterator[pa.Table]:
    """Each table appended to ``store`` before it is passed on (to dlt): paid-for vectors survive a load."""
    for table in tables:
        store.append(table)
        yield table
