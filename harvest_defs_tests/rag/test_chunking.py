"""Chunking: sections, budget, overlap, and ids that survive edits elsewhere in the document."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from harvest_defs.rag.chunking import (
    CHARS_PER_TOKEN,
    chunk_document,
    document_of,
    sections,
)

WORDS = ["alpha", "beta", "gamma", "delta", "pager", "escalate", "refund", "invoice", "ERR-4471", "within"]


def _paragraph(draw: st.DrawFn) -> str:
    sentences = draw(
        st.lists(st.lists(st.sampled_from(WORDS), min_size=3, max_size=14), min_size=1, max_size=6)
    )
    return " ".join(" ".join(s).capitalize() + "." for s in sentences)


@st.composite
def documents(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    """Sections as (heading, paragraphs); headings unique so each section is addressable."""
    count = draw(st.integers(1, 6))
    return [
        (
            f"Section {i} {draw(st.sampled_from(WORDS))}",
            [_paragraph(draw) for _ in range(draw(st.integers(1, 5)))],
        )
        for i in range(count)
    ]


def render(doc: list[tuple[str, list[str]]]) -> str:
    parts = ["# Handbook\n\nIntro line.\n"]
    for heading, paragraphs in doc:
        parts.append(f"## {heading}\n\n" + "\n\n".join(paragraphs) + "\n")
    return "\n".join(parts)


def ids_by_section(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for chunk in chunk_document("handbook__policy", text, "Handbook", max_tokens=40, overlap_tokens=8):
        out.setdefault(" > ".join(chunk.heading_path), set()).add(chunk.chunk_id)
    return out


@settings(max_examples=60, deadline=None)
@given(doc=documents(), data=st.data())
def test_an_edit_in_one_section_changes_only_that_sections_chunk_ids(
    doc: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    before = ids_by_section(render(doc))
    target = data.draw(st.integers(0, len(doc) - 1))
    heading, paragraphs = doc[target]
    edit = data.draw(st.sampled_from(["append", "replace", "insert_front"]))
    new_paragraph = _paragraph(data.draw) + " Edited."
    if edit == "append":
        changed = [*paragraphs, new_paragraph]
    elif edit == "replace":
        changed = [*paragraphs[:-1], new_paragraph]
    else:
        changed = [new_paragraph, *paragraphs]
    edited = [*doc[:target], (heading, changed), *doc[target + 1 :]]
    after = ids_by_section(render(edited))
    edited_key = f"Handbook > {heading}"
    assert set(before) == set(after)
    for key in before:
        if key != edited_key:
            assert before[key] == after[key], f"section {key!r} was not edited but its chunk ids changed"
    assert before[edited_key] != after[edited_key]


@settings(max_examples=40, deadline=None)
@given(doc=documents(), max_tokens=st.integers(20, 120))
def test_chunks_respect_the_budget_and_cover_every_word(
    doc: list[tuple[str, list[str]]], max_tokens: int
) -> None:
    text = render(doc)
    chunks = chunk_document("d", text, max_tokens=max_tokens, overlap_tokens=max_tokens // 5)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    longest_word = max(len(w) for w in WORDS) + 2
    for chunk in chunks:
        assert len(chunk.content) <= max(max_tokens * CHARS_PER_TOKEN, longest_word)
        assert document_of(chunk.chunk_id) == "d"
        assert chunk.text.endswith(chunk.content)
    covered = " ".join(c.content for c in chunks)
    for _, paragraphs in doc:
        for paragraph in paragraphs:
            for word in paragraph.split():
                assert word in covered


def test_sections_follow_heading_levels_and_ignore_fenced_code() -> None:
    text = (
        "# A\n\nintro\n\n## B\n\nb body\n\n```\n# not a heading\n```\n\n### C\n\nc body\n\n## D\n\nd body\n"
    )
    got = [(s.heading_path, s.body.strip()) for s in sections(text)]
    assert got == [
        (("A",), "intro"),
        (("A", "B"), "b body\n\n```\n# not a heading\n```"),
        (("A", "B", "C"), "c body"),
        (("A", "D"), "d body"),
    ]


def test_long_paragraph_splits_on_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(40)]
    chunks = chunk_document("doc", "# T\n\n" + " ".join(sentences), max_tokens=50, overlap_tokens=15)
    assert len(chunks) > 3
    assert all(c.content.endswith(".") for c in chunks)  # cut at sentence ends, not mid-sentence
    overlapping = sum(1 for a, b in itertools.pairwise(chunks) if a.content.split(". ")[-1] in b.content)
    assert overlapping >= 1
    assert chunks[0].text.startswith("T\n\n")


def test_a_repeated_passage_gets_distinct_ids_and_a_rename_keeps_hashes() -> None:
    text = "# T\n\nSame words here.\n\n## S\n\nOther.\n\n## S\n\nOther.\n"
    chunks = chunk_document("doc", text)
    assert len(chunks) == 3 and len({c.chunk_id for c in chunks}) == 3
    renamed = chunk_document("moved", text)
    assert [c.chunk_id.split("--")[1] for c in chunks] == [c.chunk_id.split("--")[1] for c in renamed]
