"""Deterministic stand-ins for model output: what the emulator "generates".

Everything here is a pure function of its input so that tests can predict results and re-runs are
bit-identical. Summaries are extractive (leading sentences); embeddings are L2-normalised signed
feature-hashed bags of words, so lexically similar texts are close — useful for retrieval tests,
clearly not semantic.
"""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache

import numpy as np

# The emulator's "tokenizer": one token per 4 characters (rounded up), at least one for non-empty text.
# Anthropic and Voyage both document roughly 3.5–5 characters per English token; 4 is the middle. The
# same rule is used for billing (usage) and for limits, so they always agree; it lives in the library
# (harvest_defs.harvest.tokens) so the pre-send estimate is the same function.
from harvest_defs.harvest.tokens import CHARS_PER_TOKEN as CHARS_PER_TOKEN
from harvest_defs.harvest.tokens import count_tokens as count_tokens

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "does",
        "do",
        "did",
        "can",
    ]
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens without stop words: the features of the bag-of-words embedding."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


@lru_cache(maxsize=1 << 18)
def _feature(word: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def embed_text(text: str, dim: int) -> np.ndarray:
    """L2-normalised signed feature hashing of the text's words (sublinear term frequency)."""
    vec = np.zeros(dim, dtype=np.float32)
    counts: dict[str, int] = {}
    for w in words(text):
        counts[w] = counts.get(w, 0) + 1
    for w, tf in counts.items():
        index, sign = _feature(w, dim)
        vec[index] += sign * (1.0 + math.log(tf))
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        # Text without words (only punctuation / stop words): a fixed unit vector, still deterministic.
        vec[0] = 1.0
        return vec
    return vec / norm


_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*$", re.MULTILINE)


def _heading_sentence(match: re.Match[str]) -> str:
    """A Markdown heading reads as a sentence ("# On-call policy" -> "On-call policy.")."""
    return match.group(1).rstrip(".:") + "."


_DOCUMENT_TAG = re.compile(r"<document>(?P<doc>.*?)</document>", re.DOTALL)


def split_instruction(prompt: str) -> str:
    """The document part of a prompt such as ``"Summarize:\\n\\n<doc>"`` or ``"Summarize: <doc>"``.

    A ``<document>...</document>`` block (Anthropic's recommended way to wrap long inputs) wins.
    """
    tagged = _DOCUMENT_TAG.search(prompt)
    if tagged and tagged.group("doc").strip():
        return tagged.group("doc").strip()
    head, sep, rest = prompt.partition("\n\n")
    if sep and head.rstrip().endswith(":") and rest.strip():
        return rest.strip()
    head, sep, rest = prompt.partition(": ")
    if sep and len(head) < 80 and "\n" not in head and rest.strip():
        return rest.strip()
    return prompt.strip()


_QUESTION = re.compile(r"\n\s*Question:\s*(?P<q>.+?)\s*$", re.DOTALL)
_SOURCE = re.compile(
    r"\[source (?P<id>[^\]\s]+)\]\s*(?P<body>.*?)(?=\n\s*\[source |\n\s*Question:|\Z)", re.DOTALL
)


def _content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in _STOPWORDS}


def answer_question(prompt: str, max_tokens: int, max_sentences: int = 2) -> tuple[str, str] | None:
    """Extractive answer to a RAG prompt (``[source id] ...`` blocks, then ``Question: ...``), or None.

    Picks the source whose sentence shares the most content words with the question (ties: earlier
    source), then its best sentences in document order, cited with the ``[source id]`` tag the prompt asks
    for.
    Lexical, deterministic, and good enough to tell a right retrieval from a wrong one in tests.
    """
    found = _QUESTION.search(prompt)
    if not found:
        return None
    question = _content_words(found.group("q"))
    scored: list[tuple[int, int, int, str, str]] = []
    seen: set[str] = set()  # a summary repeats its document's sentences: answer each sentence once
    for rank, source in enumerate(_SOURCE.finditer(prompt[: found.start()])):
        body = " ".join(source.group("body").split())
        for position, sentence in enumerate(_SENTENCE_END.split(body)):
            overlap = len(question & _content_words(sentence))
            if overlap and sentence not in seen:
                seen.add(sentence)
                scored.append((-overlap, rank, position, source.group("id"), sentence))
    if not scored:
        return "The sources do not answer this question.", "end_turn"
    scored.sort()
    best_source = scored[0][3]  # answer from the best-matching source only, as a careful model would
    chosen = sorted((s for s in scored if s[3] == best_source), key=lambda s: (s[0], s[2]))[:max_sentences]
    out: list[str] = []
    for _, _, _, source_id, sentence in sorted(chosen, key=lambda s: s[2]):
        candidate = " ".join([*out, f"[source {source_id}] {sentence}"])
        if count_tokens(candidate) > max_tokens:
            if not out:
                return candidate[: max_tokens * CHARS_PER_TOKEN], "max_tokens"
            break
        out.append(f"[source {source_id}] {sentence}")
    return " ".join(out), "end_turn"


def summarize(prompt: str, max_tokens: int, max_sentences: int = 3) -> tuple[str, str]:
    """Extractive summary: the document's leading sentences within ``max_tokens``.

    A RAG prompt (sources + ``Question:``) gets an extractive, cited answer instead (``answer_question``).
    Returns ``(text, stop_reason)`` where stop_reason is ``end_turn`` or ``max_tokens`` (the text was cut).
    """
    answered = answer_question(prompt, max_tokens) if "[source " in prompt else None
    if answered is not None:
        return answered
    document = " ".join(_HEADING.sub(_heading_sentence, split_instruction(prompt)).split())
    if not document:
        return "", "end_turn"
    out: list[str] = []
    # Only the leading sentences are used: maxsplit keeps a long document from being split whole.
    for sentence in _SENTENCE_END.split(document, maxsplit=max_sentences):
        candidate = " ".join([*out, sentence])
        if count_tokens(candidate) > max_tokens:
            if not out:
                return document[: max_tokens * CHARS_PER_TOKEN], "max_tokens"
            break
        out.append(sentence)
        if len(out) >= max_sentences:
            break
    return " ".join(out), "end_turn"
