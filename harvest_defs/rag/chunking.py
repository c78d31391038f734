"""Split a document into passages for retrieval: Markdown sections first, then a token budget with overlap.

Why two stages. The splitting inside a section is ``semantic-text-splitter``'s ``MarkdownSplitter`` (a
Rust crate with Python wheels and no dependencies, so it installs offline from the wheel alone; it is
maintained, and it splits on the highest Markdown level that fits the budget — blocks, paragraphs,
sentences, then words — merging neighbours up to the budget, with overlap). It is greedy from the start
of its input, so fed a whole document an edit near the top could move every boundary after it. We
therefore cut the document at its ATX headings ourselves and split each section on its own: an edit in
one section can only change that section's chunks, and a chunk never spans two sections (no overlap
across a heading either), so its heading path is exact.

Chunk ids are content-addressed: ``<document_id>--<12 hex>`` of (heading path, content, occurrence of the
same pair earlier in the document). Not a running index, which would shift every later id when a
paragraph is inserted; with content ids an untouched passage keeps its id (and its Voyage vector)
however the rest of the document changes. The occurrence number only matters for a passage repeated
verbatim under the same heading.

The budget is in tokens at 4 characters a token — the estimate the Voyage/Anthropic limits here use
(``harvest/voyage/packing.py``, the emulator) — so no tokenizer model has to be downloaded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

CHARS_PER_TOKEN = 4
DEFAULT_MAX_TOKENS = 300
DEFAULT_OVERLAP_TOKENS = 40
CHUNK_HASH_HEX = 12
CHUNK_ID_SEPARATOR = "--"
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    """One passage: ``text`` is what is embedded and BM25-indexed (heading path line + content)."""

    chunk_id: str
    document_id: str
    heading_path: tuple[str, ...]
    content: str
    text: str
    start: int  # character offset of the content in the document (for display and tests)

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "heading_path": " > ".join(self.heading_path),
            "text": self.text,
            "start": self.start,
        }


@dataclass(frozen=True)
class Section:
    """The text under one heading, up to the next heading of any level."""

    heading_path: tuple[str, ...]
    body: str
    start: int


def sections(text: str) -> Iterator[Section]:
    """Cut ``text`` at ATX headings (``#`` .. ``######``) outside fenced code; yields non-empty bodies."""
    path: list[tuple[int, str]] = []
    body: list[str] = []
    body_start = 0
    offset = 0
    in_fence = False

    def flush() -> Iterator[Section]:
        joined = "".join(body)
        if joined.strip():
            yield Section(tuple(title for _, title in path), joined, body_start)

    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line.rstrip("\r\n"))
        if heading:
            yield from flush()
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading.group(2).strip()))
            body = []
            body_start = offset + len(line)
        else:
            body.append(line)
        offset += len(line)
    yield from flush()


@lru_cache(maxsize=8)
def _splitter(max_chars: int, overlap_chars: int) -> object:
    from semantic_text_splitter import MarkdownSplitter

    return MarkdownSplitter(max_chars, overlap=overlap_chars)


def chunk_id(document_id: str, heading_path: tuple[str, ...], content: str, occurrence: int) -> str:
    """``<document_id>--<12 hex>``: a pure function of the passage, never of its position."""
    key = "\x1f".join([*heading_path, "\x1e", content, str(occurrence)])
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:CHUNK_HASH_HEX]
    return f"{document_id}{CHUNK_ID_SEPARATOR}{digest}"


def document_of(chunk: str) -> str:
    """The document id a chunk id belongs to (inverse of the ``--<hex>`` suffix)."""
    head, sep, tail = chunk.rpartition(CHUNK_ID_SEPARATOR)
    return head if sep and len(tail) == CHUNK_HASH_HEX else chunk


def embed_text(title: str | None, heading_path: tuple[str, ...], content: str) -> str:
    """The passage as embedded: its place in the document on one line, then the content.

    A section's words ("Escalation") often live only in its heading, so a chunk without them would be
    unfindable by the very term a question uses.
    """
    path = list(heading_path)
    if title and (not path or path[0] != title):
        path.insert(0, title)
    return f"{' > '.join(path)}\n\n{content}" if path else content


def chunk_document(
    document_id: str,
    text: str,
    title: str | None = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """The document's chunks in document order (each at most ``max_tokens`` of content, ~4 chars each)."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    splitter = _splitter(max_tokens * CHARS_PER_TOKEN, overlap_tokens * CHARS_PER_TOKEN)
    seen: dict[tuple[tuple[str, ...], str], int] = {}
    out: list[Chunk] = []
    for section in sections(text):
        for offset, content in splitter.chunk_indices(section.body):  # type: ignore[attr-defined]
            content = content.strip()
            if not content:
                continue
            key = (section.heading_path, content)
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            out.append(
                Chunk(
                    chunk_id(document_id, section.heading_path, content, occurrence),
                    document_id,
                    section.heading_path,
                    content,
                    embed_text(title, section.heading_path, content),
                    section.start + offset,
                )
            )
    return out
