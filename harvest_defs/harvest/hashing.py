"""Content hashes: the identity of a request, a text or a request set.

A hash over canonical JSON (sorted keys, no whitespace) is what makes "never pays twice" checkable: the
same request built twice, in another process or another week, hashes the same, so the ledger and the
destination recognize it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def canonical_json(obj: Any) -> str:
    """One spelling per value: the input of every hash here."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(obj: Any) -> str:
    """sha256 hex of ``obj``'s canonical JSON (a ``str`` is hashed as its JSON string)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """sha256 hex of the raw UTF-8 text (cheaper than JSON for plain strings)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def set_hash(hashes: Iterable[str], **options: Any) -> str:
    """Hash of a request *set*: order-independent, so a re-run that lists prompts differently resumes."""
    digest = hashlib.sha256()
    digest.update(canonical_json(options).encode("utf-8"))
    for item in sorted(hashes):
        digest.update(b"\n")
        digest.update(item.encode("ascii"))
    return digest.hexdigest()
