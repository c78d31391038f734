"""Reading an untidy corpus: every readable document comes through; every other file is named with why."""

from __future__ import annotations

import os
from pathlib import Path

from harvest_defs.harvest.corpus import ROOT_COLLECTION, discover_collections, read_collection
from harvest_defs.harvest.corpus.decode import UndecodableError, decode_text


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def test_bad_files_are_skipped_with_their_reason_and_the_rest_is_read(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _write(corpus / "alpha" / "good.md", "# Good\n\nA readable document.\n")
    _write(corpus / "alpha" / "menu.txt", "Café menus: crème brûlée, déjà vu.\n".encode("latin-1"))
    _write(corpus / "alpha" / "russian.txt", "Привет мир, это тест кодировки текста.".encode("cp1251"))
    _write(corpus / "alpha" / "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _write(corpus / "alpha" / "empty.md", "")
    _write(corpus / "alpha" / "blank.txt", "  \n\t\n")
    os.symlink(tmp_path / "nowhere.md", corpus / "alpha" / "dangling.md")
    _write(
        corpus / "alpha" / "records.jsonl",
        '{"id": "r1", "text": "First record."}\n'
        "{not json\n"
        '["a", "list"]\n'
        '{"id": "r1", "text": "Same id again."}\n'
        '{"id": "r3"}\n'
        '{"text": "No id: the line number is its id."}\n',
    )
    read = read_collection(corpus, "alpha")
    ids = sorted(d["document_id"] for d in read.documents)
    assert ids == [
        "alpha__good",
        "alpha__menu--txt",
        "alpha__records--jsonl__L6",
        "alpha__records--jsonl__r1",
        "alpha__russian--txt",
    ]
    by_id = {d["document_id"]: d for d in read.documents}
    assert by_id["alpha__menu--txt"]["text"].startswith("Café menus: crème brûlée")
    assert by_id["alpha__menu--txt"]["encoding"] == "cp1252"
    assert by_id["alpha__russian--txt"]["text"].startswith("Привет мир")
    reasons = {s.path: s.reason for s in read.skipped}
    assert set(reasons) == {
        "alpha/image.md",
        "alpha/empty.md",
        "alpha/blank.txt",
        "alpha/dangling.md",
        "alpha/records.jsonl:2",
        "alpha/records.jsonl:3",
        "alpha/records.jsonl:4",
        "alpha/records.jsonl:5",
    }
    assert "binary" in reasons["alpha/image.md"]
    assert "dangling symlink" in reasons["alpha/dangling.md"]
    assert "invalid JSON" in reasons["alpha/records.jsonl:2"]
    assert "must be an object" in reasons["alpha/records.jsonl:3"]
    assert "duplicate id" in reasons["alpha/records.jsonl:4"]


def test_collections_and_the_top_level(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _write(corpus / "beta" / "a.md", "A.")
    _write(corpus / "root" / "b.md", "B.")
    _write(corpus / "top.md", "Top.")
    _write(corpus / ".hidden" / "c.md", "Hidden folders are not collections.")
    _write(corpus / "bad...name" / "d.md", "Dagster cannot hold this partition key.")
    names, refused = discover_collections(corpus)
    assert names == [ROOT_COLLECTION, "beta", "root"]
    assert [r.path for r in refused] == ["bad...name/"]
    assert [d["document_id"] for d in read_collection(corpus, ROOT_COLLECTION).documents] == ["top"]
    assert read_collection(corpus, "gone").documents == []  # a removed collection reads as empty


def test_decoding_prefers_utf8_then_detects() -> None:
    assert decode_text("naïve".encode()).encoding == "utf-8"
    assert decode_text(b"\xef\xbb\xbfbom").text == "bom"
    assert decode_text("utf16 text".encode("utf-16")).text == "utf16 text"
    try:
        decode_text(b"\x00\x01\x02\x03")
    except UndecodableError as exc:
        assert "binary" in str(exc)
    else:
        raise AssertionError("NUL bytes must not decode as text")
