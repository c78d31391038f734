"""Bytes to text for corpus files: UTF-8 first, then a detector, never an exception that ends a partition.

Why charset-normalizer (already in the tree through requests) and a cp1252 preference: real corpora hold
Windows/Latin-1 files next to UTF-8 ones, and on short texts every single-byte code page decodes without
error — the detector then guesses among equally "clean" Baltic or Central European pages (measured:
``Café menus.`` in Latin-1 came back as cp1250). Western text in cp1252 decodes with a near-zero mess
ratio, while Cyrillic or Greek bytes read as cp1252 score far above it (1.04 and 1.40 measured), so cp1252
is taken only when it reads cleanly, and the detector decides otherwise.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

_CLEAN_MESS = 0.1
# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class UndecodableError(ValueError):
    """The bytes are not text in any encoding we can tell (binary data, or too garbled to trust)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str  # "utf-8" for the normal case; anything else is reported to the user


def decode_text(data: bytes) -> Decoded:
    """Decode a corpus file's bytes, or raise :class:`UndecodableError` saying why."""
    if data.startswith(codecs.BOM_UTF8):
        return Decoded(data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(encoding), encoding)
            except UnicodeDecodeError as exc:
                raise UndecodableError(f"{encoding} byte-order mark but invalid {encoding}: {exc}") from exc
    if b"\x00" in data:  # before UTF-8: NUL bytes are valid UTF-8, and no text file holds them
        raise UndecodableError("binary data (NUL bytes), not text")
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer.md import mess_ratio

    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and mess_ratio(western) <= _CLEAN_MESS:
        return Decoded(western, "cp1252")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UndecodableError("not text: no encoding decodes it cleanly (binary data?)")
    return Decoded(str(best), best.encoding)
