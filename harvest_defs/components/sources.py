"""Where a component's rows come from: files (Parquet/CSV/JSONL glob), SQL over the warehouse, an upstream
asset's table, or the corpus folder.

Why one small resolved object and not the YAML model itself: the assets and sensors need the same two
questions answered at load time (which columns exist, for the config checks) and at run time (the rows of
one partition), and both are answered with DuckDB so every format behaves alike. Reading happens in runs
and sensors; at load time only the column names are read (a ``DESCRIBE``, no data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harvest_defs.defs.assets.documents import SNAPSHOT_COLUMNS

FILE_READERS = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".jsonl": "read_json_auto"}
FILE_READERS[".json"] = FILE_READERS[".ndjson"] = "read_json_auto"


class SourceError(ValueError):
    """A source that cannot be read as configured; the loader names the YAML field."""


@dataclass(frozen=True)
class ResolvedSource:
    """One of the four kinds, with paths made absolute relative to the ``defs.yaml`` folder."""

    kind: str  # "files" | "sql" | "asset" | "corpus"
    files: str | None = None  # an absolute glob
    sql: str | None = None
    table: str | None = None  # "harvest.<table>" in the warehouse, for kind "asset"
    asset_key: str | None = None
    corpus: str | None = None  # None: $HARVEST_CORPUS or the sample corpus

    def relation(self) -> str:
        """A DuckDB relation (SELECT) over the source, for files, SQL and asset tables."""
        if self.kind == "files":
            assert self.files is not None
            suffix = Path(self.files).suffix.lower()
            reader = FILE_READERS.get(suffix)
            if reader is None:
                raise SourceError(f"unsupported file type {suffix!r}; use one of {sorted(FILE_READERS)}")
            return f"SELECT * FROM {reader}('{_quote(self.files)}')"
        if self.kind == "sql":
            assert self.sql is not None
            return self.sql
        if self.kind == "asset":
            return f"SELECT * FROM {self.table}"
        raise SourceError(f"a {self.kind} source has no SQL relation")

    @property
    def reads_warehouse(self) -> bool:
        return self.kind in ("sql", "asset")

    def columns(self) -> list[str] | None:
        """Column names at load time, or ``None`` when they are only known at run time.

        Warehouse sources (SQL, an asset's table) are checked when a run reads them: at load the table
        may not exist yet, and opening the DuckDB file could collide with a run writing it. CSV and JSONL
        headers are read with the standard library (loading the code location imports no DuckDB).
        """
        if self.kind == "corpus":
            return list(SNAPSHOT_COLUMNS)
        if self.kind != "files":
            return None
        assert self.files is not None
        matches = sorted(Path("/").glob(self.files.lstrip("/")))
        if not matches:
            raise SourceError(f"no file matches {self.files!r}")
        suffix = matches[0].suffix.lower()
        if suffix not in FILE_READERS:
            raise SourceError(f"unsupported file type {suffix!r}; use one of {sorted(FILE_READERS)}")
        try:
            return _header(matches[0], suffix)
        except (OSError, ValueError) as exc:
            raise SourceError(f"{matches[0]}: cannot read its columns: {exc}") from exc


def _header(path: Path, suffix: str) -> list[str]:
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    if suffix in (".jsonl", ".ndjson", ".json"):
        import json

        with open(path, encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "{}")
        row = json.loads(first)
        if not isinstance(row, dict):
            raise ValueError("the first line is not a JSON object")
        return list(row)
    import pyarrow.parquet as pq  # a Parquet source: its schema is in the footer

    return list(pq.read_schema(path).names)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def read_rows(
    source: ResolvedSource,
    store: Any,
    columns: Sequence[str] | None = None,
    where: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The source's rows (optionally only ``column = value``), as dicts; files read with no lock.

    Warehouse sources read under the shared side of the warehouse lock, so a run writing it is waited
    for instead of failing on DuckDB's single-writer lock.
    """
    if source.kind == "corpus":
        return _corpus_rows(source, store, where)
    import duckdb

    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    sql = f"SELECT {select} FROM ({source.relation()}) AS src"
    params: list[Any] = []
    if where is not None:
        sql += f' WHERE CAST("{where[0]}" AS VARCHAR) = ?'
        params.append(where[1])
    if not source.reads_warehouse:
        con = duckdb.connect()
        try:
            return list(con.execute(sql, params).to_arrow_table().to_pylist())
        finally:
            con.close()
    from harvest_defs.defs.warehouse import query_rows

    rows = query_rows(store, store.warehouse_path, sql, params, needs=source.table)
    if rows is None:
        raise SourceError(f"the source table {source.table or 'of the query'} does not exist yet")
    return rows


def _corpus_rows(source: ResolvedSource, store: Any, where: tuple[str, str] | None) -> list[dict[str, Any]]:
    from harvest_defs.harvest.corpus import discover_collections, read_collection

    corpus = Path(source.corpus) if source.corpus else store.corpus_path
    collections = [where[1]] if where is not None else discover_collections(corpus)[0]
    rows: list[dict[str, Any]] = []
    for collection in collections:
        rows.extend(read_collection(corpus, collection).documents)
    return rows


def distinct_values(source: ResolvedSource, store: Any, column: str) -> list[str]:
    """The partition keys a column-partitioned source has now (sorted), for its sensor."""
    if source.kind == "corpus":
        from harvest_defs.harvest.corpus import discover_collections

        return sorted(discover_collections(Path(source.corpus) if source.corpus else store.corpus_path)[0])
    rows = read_rows(source, store, [column])
    return sorted({str(r[column]) for r in rows if r[column] is not None})
