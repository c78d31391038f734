"""Document ids: unique across the corpus for any two different paths, valid custom_ids, stable, readable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harvest_defs.harvest.corpus.ids import CUSTOM_ID, ROOT_COLLECTION, DocumentKey, document_id

# Names as users have them: Latin, punctuation, spaces, non-Latin scripts, dots, case, long ones.
NAME = st.text(
    alphabet=st.sampled_from(list("abcAB01-_ .日本中国Ελλάδαé()'")), min_size=1, max_size=70
).filter(lambda s: s.strip() and "/" not in s)
SUFFIX = st.sampled_from([".md", ".txt", ".jsonl", ".MD", ".Txt"])


@st.composite
def keys(draw: st.DrawFn) -> DocumentKey:
    collection = draw(st.one_of(st.just(ROOT_COLLECTION), NAME))
    depth = 1 if collection == ROOT_COLLECTION else draw(st.integers(1, 3))
    parts = [draw(NAME) for _ in range(depth)]
    suffix = draw(SUFFIX)
    record = draw(st.one_of(st.none(), NAME, st.integers(1, 99).map(lambda n: f"L{n}")))
    if suffix.lower() != ".jsonl":
        record = None
    return DocumentKey(collection, "/".join(parts) + suffix, record)


@settings(max_examples=400, deadline=None)
@given(st.lists(keys(), min_size=2, max_size=40, unique=True))
def test_different_paths_never_share_an_id(batch: list[DocumentKey]) -> None:
    ids = [document_id(key) for key in batch]
    assert len(set(ids)) == len(ids), list(zip(batch, ids, strict=True))
    assert all(CUSTOM_ID.match(i) for i in ids)


@given(keys())
def test_the_same_path_always_gets_the_same_id(key: DocumentKey) -> None:
    assert document_id(key) == document_id(DocumentKey(key.collection, key.relative_path, key.record))


def test_readable_where_lossless_hashed_where_lossy() -> None:
    assert document_id(DocumentKey("handbook", "on-call-policy.md")) == "handbook__on-call-policy"
    assert document_id(DocumentKey("alpha", "sub/notes.txt")) == "alpha__sub__notes--txt"
    assert document_id(DocumentKey("alpha", "qa.jsonl", "q7")) == "alpha__qa--jsonl__q7"
    assert document_id(DocumentKey(ROOT_COLLECTION, "readme.md")) == "readme"
    # The collisions users hit: one slug, several documents.
    same_slug = [
        DocumentKey("alpha", "日本.md"),
        DocumentKey("alpha", "中国.md"),
        DocumentKey("alpha", "Ελλάδα.txt"),
        DocumentKey("alpha", "a b.md"),
        DocumentKey("alpha", "a-b.md"),
        DocumentKey("alpha", "readme.md"),
        DocumentKey("beta", "readme.md"),
        DocumentKey("root", "readme.md"),
        DocumentKey(ROOT_COLLECTION, "readme.md"),
    ]
    ids = [document_id(k) for k in same_slug]
    assert len(set(ids)) == len(ids), ids
    assert ids[4] == "alpha__a-b" and ids[3].startswith("alpha-a-b-md--")
    long_name = DocumentKey("alpha", "x" * 80 + ".md")
    assert len(document_id(long_name)) <= 64 and CUSTOM_ID.match(document_id(long_name))
