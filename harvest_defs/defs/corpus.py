"""Reading the corpus folder: collections (= partitions), documents and cheap change fingerprints.

A corpus is a folder of ``.md`` / ``.txt`` files and ``.jsonl`` files (one ``{"id", "text", ...}`` per line).
A document's id is its file stem (or the JSONL ``id``): it becomes the Claude ``custom_id`` and the Voyage
``embedding_id``, so ids must be unique across the corpus.
Each immediate subfolder is a *collection*; files directly in the root belong to the collection ``root``.
Collections are the partitions of the asset chain, so a backfill over a range of collections means
"harvest these parts of the corpus", and a new collection is a new partition.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOCUMENT_SUFFIXES = frozenset({".md", ".txt", ".jsonl"})
ROOT_COLLECTION = "root"
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_MAX_ID = 64


def default_corpus_dir() -> Path:
    """The sample corpus shipped with the package (``sample_corpus/documents`` if it has that layout)."""
    base = Path(__file__).resolve().parent.parent / "sample_corpus"
    documents = base / "documents"
    return documents if documents.is_dir() else base


def _document_files(folder: Path, *, recursive: bool) -> Iterator[Path]:
    pattern = "**/*" if recursive else "*"
    for path in sorted(folder.glob(pattern)):
        if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES and not path.name.startswith("."):
            yield path


def discover_collections(corpus_dir: Path) -> list[str]:
    """Sorted collection names: subfolders holding documents, plus ``root`` for top-level files."""
    if not corpus_dir.is_dir():
        return []
    names = [
        child.name
        for child in sorted(corpus_dir.iterdir())
        if child.is_dir()
        and not child.name.startswith(".")
        and next(_document_files(child, recursive=True), None)
    ]
    if next(_document_files(corpus_dir, recursive=False), None):
        names.append(ROOT_COLLECTION)
    return sorted(names)


def _collection_files(corpus_dir: Path, collection: str) -> list[Path]:
    if collection == ROOT_COLLECTION:
        return list(_document_files(corpus_dir, recursive=False))
    return list(_document_files(corpus_dir / collection, recursive=True))


def collection_fingerprint(corpus_dir: Path, collection: str) -> str:
    """A hash of (path, size, mtime) per file: changes when a document is added, removed or edited.

    Cheap enough for a schedule tick over a large corpus: it stats files, it does not read them.
    """
    digest = hashlib.sha256()
    for path in _collection_files(corpus_dir, collection):
        stat = path.stat()
        digest.update(f"{path.relative_to(corpus_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def document_id(raw: str) -> str:
    """A Claude-compatible ``custom_id`` (``^[a-zA-Z0-9_-]{1,64}$``) that stays readable and unique."""
    slug = _ID_UNSAFE.sub("-", raw).strip("-") or "doc"
    if len(slug) <= _MAX_ID:
        return slug
    suffix = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{slug[: _MAX_ID - 11]}-{suffix}"


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:200]
    return fallback


def read_collection(corpus_dir: Path, collection: str) -> list[dict[str, Any]]:
    """Every document of one collection as a row: ids, title, text and its content hash."""
    rows: list[dict[str, Any]] = []
    for path in _collection_files(corpus_dir, collection):
        relative = path.relative_to(corpus_dir).with_suffix("").as_posix()
        if path.suffix.lower() == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    text = str(record.get("text") or record.get("content") or "")
                    raw_id = str(record.get("id") or f"{relative}-{line_no}")
                    rows.append(_row(collection, raw_id, f"{path.name}:{line_no}", text, record.get("title")))
        else:
            text = path.read_text(encoding="utf-8")
            rows.append(_row(collection, path.stem, path.relative_to(corpus_dir).as_posix(), text, None))
    _disambiguate(rows)
    return [row for row in rows if row["text"].strip()]


def _disambiguate(rows: list[dict[str, Any]]) -> None:
    """Same stem twice in a collection (``a/x.md``, ``b/x.md``): fall back to the path for those ids."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["document_id"]] = counts.get(row["document_id"], 0) + 1
    for row in rows:
        if counts[row["document_id"]] > 1:
            row["document_id"] = document_id(row["source_path"].rsplit(".", 1)[0])


def _row(collection: str, raw_id: str, source: str, text: str, title: Any) -> dict[str, Any]:
    return {
        "document_id": document_id(raw_id),
        "collection": collection,
        "source_path": source,
        "title": str(title) if title else _title(text, raw_id),
        "text": text,
        "text_hash": hashlib.sha256(text.encode()).hexdigest(),
    }
