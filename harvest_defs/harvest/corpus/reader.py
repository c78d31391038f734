"""Reading a corpus folder: collections, documents, and the files that could not be read (and why).

A corpus is a folder of ``.md`` / ``.txt`` files and ``.jsonl`` files (one ``{"id"?, "text", "title"?}``
object per line). Each immediate subfolder is a *collection* (a partition of the asset chain); files
directly in the root form the collection :data:`ROOT_COLLECTION` (``.root``: folders starting with a dot
are never collections, so the name cannot collide with one).

Why every read returns ``(documents, skipped)`` instead of raising: one Latin-1 file, one binary file
named ``.md`` or one malformed JSONL line must not cost the rest of the collection — or, in a backfill
over many collections, every other collection — its harvest. A file that cannot be read becomes a
:class:`SkippedFile` with its path and the reason, for the run log, metadata and an asset check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harvest_defs.harvest.corpus.decode import UndecodableError, decode_text
from harvest_defs.harvest.corpus.ids import ROOT_COLLECTION, DocumentKey, document_id

DOCUMENT_SUFFIXES = frozenset({".md", ".txt", ".jsonl"})
# Dagster refuses these in partition keys; a folder named so is reported, not turned into a partition.
INVALID_NAME_PARTS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A corpus entry that was not harvested: ``path`` relative to the corpus, ``reason`` for a human."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class CollectionRead:
    """One collection's readable documents (rows) and what was skipped."""

    collection: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def default_corpus_dir() -> Path:
    """The sample corpus shipped with the package (``sample_corpus/documents`` if it has that layout)."""
    base = Path(__file__).resolve().parent.parent.parent / "sample_corpus"
    documents = base / "documents"
    return documents if documents.is_dir() else base


def _candidates(folder: Path, *, recursive: bool) -> Iterator[Path]:
    """Entries that look like documents (by suffix), symlinks included so dangling ones are reported."""
    pattern = "**/*" if recursive else "*"
    for path in sorted(folder.glob(pattern)):
        if path.name.startswith(".") or path.suffix.lower() not in DOCUMENT_SUFFIXES:
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts[:-1]):
            continue
        if path.is_file() or (path.is_symlink() and not path.exists()):
            yield path


def invalid_collection_name(name: str) -> str | None:
    bad = [part for part in INVALID_NAME_PARTS if part in name]
    return f"folder name contains {bad[0]!r}, which a partition key cannot hold" if bad else None


def discover_collections(corpus_dir: Path) -> tuple[list[str], list[SkippedFile]]:
    """Sorted collection names (subfolders holding documents, plus ``.root``) and folders refused."""
    if not corpus_dir.is_dir():
        return [], []
    names: list[str] = []
    refused: list[SkippedFile] = []
    for child in sorted(corpus_dir.iterdir()):
        if (
            not child.is_dir()
            or child.name.startswith(".")
            or next(_candidates(child, recursive=True), None) is None
        ):
            continue
        problem = invalid_collection_name(child.name)
        if problem:
            refused.append(SkippedFile(child.name + "/", problem))
        else:
            names.append(child.name)
    if next(_candidates(corpus_dir, recursive=False), None) is not None:
        names.append(ROOT_COLLECTION)
    return sorted(names), refused


def collection_folder(corpus_dir: Path, collection: str) -> Path:
    return corpus_dir if collection == ROOT_COLLECTION else corpus_dir / collection


def _collection_files(corpus_dir: Path, collection: str) -> list[Path]:
    folder = collection_folder(corpus_dir, collection)
    if not folder.is_dir():
        return []
    return list(_candidates(folder, recursive=collection != ROOT_COLLECTION))


def collection_fingerprint(corpus_dir: Path, collection: str) -> str:
    """A hash of (path, size, mtime) per file: changes when a document is added, removed or edited.

    Cheap enough for a sensor tick over a large corpus: it stats files, it does not read them. A missing
    collection has the fingerprint of an empty one.
    """
    digest = hashlib.sha256()
    for path in _collection_files(corpus_dir, collection):
        try:
            stat = path.stat()
            digest.update(f"{path.relative_to(corpus_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path.relative_to(corpus_dir)}\0unreadable\n".encode())
    return digest.hexdigest()[:16]


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:200]
    return fallback


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_collection(corpus_dir: Path, collection: str) -> CollectionRead:
    """Every readable document of one collection as a row, plus every skipped file with its reason."""
    out = CollectionRead(collection)
    folder = collection_folder(corpus_dir, collection)
    seen: dict[str, str] = {}  # document id -> source, to report (never merge) a hash collision
    for path in _collection_files(corpus_dir, collection):
        source = path.relative_to(corpus_dir).as_posix()
        relative = path.relative_to(folder).as_posix()
        try:
            if path.suffix.lower() == ".jsonl":
                rows = list(_jsonl_rows(path, collection, relative, source, out.skipped))
            else:
                rows = [_file_row(path, collection, relative, source)]
        except _Skip as skip:
            out.skipped.append(SkippedFile(source, str(skip)))
            continue
        for row in rows:
            other = seen.get(row["document_id"])
            if other is not None:
                out.skipped.append(
                    SkippedFile(row["source_path"], f"id {row['document_id']} also used by {other}")
                )
                continue
            seen[row["document_id"]] = row["source_path"]
            out.documents.append(row)
    return out


class _Skip(Exception):
    """A file (or JSONL line) that is not a document; its message is the reason shown to the user."""


def _read_text(path: Path) -> tuple[str, str]:
    if path.is_symlink() and not path.exists():
        raise _Skip(f"dangling symlink (points to {os.readlink(path)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Skip(f"cannot read: {exc.strerror or exc}") from exc
    try:
        decoded = decode_text(data)
    except (UndecodableError, UnicodeDecodeError) as exc:
        raise _Skip(str(exc)) from exc
    return decoded.text, decoded.encoding


def _file_row(path: Path, collection: str, relative: str, source: str) -> dict[str, Any]:
    text, encoding = _read_text(path)
    if not text.strip():
        raise _Skip("empty file" if not text else "only whitespace")
    key = DocumentKey(collection, relative)
    return _row(key, source, text, None, encoding)


def _jsonl_rows(
    path: Path, collection: str, relative: str, source: str, skipped: list[SkippedFile]
) -> Iterator[dict[str, Any]]:
    """One row per JSONL line; a bad line is skipped (with its line number), never the whole file."""
    text, encoding = _read_text(path)
    ids: set[str] = set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{line_no}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            skipped.append(SkippedFile(where, f"invalid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            skipped.append(SkippedFile(where, f"a JSONL line must be an object, got {type(record).__name__}"))
            continue
        body = record.get("text", record.get("content"))
        if not isinstance(body, str) or not body.strip():
            skipped.append(SkippedFile(where, "no non-empty string 'text' (or 'content') field"))
            continue
        raw_id = record.get("id")
        record_id = str(raw_id) if raw_id not in (None, "") else f"L{line_no}"
        if record_id in ids:
            skipped.append(SkippedFile(where, f"duplicate id {record_id!r} in this file"))
            continue
        ids.add(record_id)
        yield _row(DocumentKey(collection, relative, record_id), where, body, record.get("title"), encoding)


def _row(key: DocumentKey, source: str, text: str, title: Any, encoding: str) -> dict[str, Any]:
    return {
        "document_id": document_id(key),
        "collection": key.collection,
        "source_path": source,
        "title": str(title) if title else _title(text, Path(key.relative_path).stem),
        "text": text,
        "text_hash": text_hash(text),
        "encoding": encoding,
    }
