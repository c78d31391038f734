"""Document identity: one id per document, unique across the corpus, stable from run to run.

The id is the Claude ``custom_id`` and the Voyage ``embedding_id``, so it must match
``^[a-zA-Z0-9_-]{1,64}$``. It is derived from where the document lives — its collection, its relative path
and, for a JSONL record, the record's id — never from its text: the text's hash is what caches key on, so a
rename is a new id with a cache hit, and an edit is the same id with a cache miss.

Why a grammar and not just a slug: ``a b.md`` / ``a-b.md`` or ``日本.md`` / ``中国.md`` slug to the same
string, and the old "disambiguate on collision" pass mapped them to the same id again. Here the readable
form is an *injective* encoding, used only when it can be decoded back to the exact path:

- every path component is a ``PART``: letters and digits joined by single ``-`` or ``_``;
- components are joined with ``__`` (which no ``PART`` contains): ``handbook__on-call-policy``;
- the suffix is implied for ``.md``, marked ``--txt`` for ``.txt`` and ``--jsonl__<record>`` for a JSONL
  record (``--`` appears in no ``PART`` either);
- top-level files (the ``.root`` collection) have no collection component, so a one-component id is always
  a top-level file and never collides with a folder's file.

Anything else (non-Latin or punctuated names, other suffixes or cases, over 64 characters) is *lossy*: the
id is an ASCII slug plus ``--`` and 12 hex of a hash of the exact path. A lossy id contains ``--`` exactly
once, followed by hex, and no ``_``: it can never equal a readable one. Two lossy ids collide only on a
48-bit hash collision, which :func:`assign_ids`'s caller detects and reports rather than merging.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

MAX_ID = 64
HASH_HEX = 12
PART = re.compile(r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$")
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ROOT_COLLECTION = ".root"  # a dot name: folders starting with "." are never collections
_SUFFIX_MARK = {".md": "", ".txt": "--txt"}
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """Where a document lives: what its id is derived from (and what a lossy id hashes)."""

    collection: str
    relative_path: str  # posix path relative to the collection folder (the corpus root for .root)
    record: str | None = None  # a JSONL record's id (or line number); None for a whole file

    def raw(self) -> str:
        return f"{self.collection}\0{self.relative_path}\0{self.record or ''}"


def _readable(key: DocumentKey) -> str | None:
    path = key.relative_path
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        return None
    suffix = "." + suffix
    if key.record is None:
        mark = _SUFFIX_MARK.get(suffix)
        if mark is None:
            return None
    else:
        if suffix != ".jsonl" or not PART.match(key.record):
            return None
        mark = "--jsonl__" + key.record
    parts = stem.split("/")
    if key.collection != ROOT_COLLECTION:
        parts.insert(0, key.collection)
    elif len(parts) != 1:
        return None  # top-level files only: a nested path under .root is not part of the grammar
    if not all(PART.match(part) for part in parts):
        return None
    readable = "__".join(parts) + mark
    return readable if len(readable) <= MAX_ID else None


def _lossy(key: DocumentKey) -> str:
    digest = hashlib.sha256(key.raw().encode("utf-8", "surrogateescape")).hexdigest()[:HASH_HEX]
    ascii_text = unicodedata.normalize("NFKD", f"{key.collection}/{key.relative_path}/{key.record or ''}")
    slug = _NON_ALNUM.sub("-", ascii_text.encode("ascii", "ignore").decode()).strip("-")
    slug = slug[: MAX_ID - 2 - HASH_HEX].strip("-") or "doc"
    return f"{slug}--{digest}"


def document_id(key: DocumentKey) -> str:
    """The document's id: readable when the path encodes losslessly, else a slug with a path hash."""
    return _readable(key) or _lossy(key)
