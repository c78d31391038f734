"""Structured outputs and forced tool inputs: JSON that validates against a schema, derived from the prompt.

Used for ``output_config.format = {"type": "json_schema", "schema": ...}`` (the text block is that JSON)
and for forced ``tool_use`` inputs (``tool_choice`` ``tool``/``any``). Values are deterministic functions
of the prompt: an ``enum`` picks the member sharing most words with the prompt (else one chosen by a hash
of the prompt), strings quote the document's text, integers count its words, arrays have one item, every
declared property is present and no other is (``additionalProperties: false`` holds).

:func:`schema_error` gives the 400 for JSON Schema features structured outputs do not support, per
https://docs.claude.com/en/docs/build-with-claude/structured-outputs ("JSON Schema limitations"):
recursive schemas, external ``$ref``, numerical constraints (``minimum``, ``maximum``, ``multipleOf``,
exclusive bounds), string length constraints, ``minItems`` other than 0 or 1, ``maxItems``,
``additionalProperties`` other than ``false``, and complex types in ``enum``. ``pattern`` is documented as
supported (a regex subset) but the emulator cannot generate matching strings, so it is refused with a
message that says so (an emulator limitation, not API behaviour).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from harvest_defs.emulator.content import split_instruction, words

_UNSUPPORTED = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "contains",
    "patternProperties",
    "dependentSchemas",
    "if",
    "not",
    "oneOf",
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FORMATS: dict[str, str] = {
    "date-time": "2024-06-01T00:00:00Z",
    "date": "2024-06-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "hostname": "example.com",
    "uri": "https://example.com/",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class SchemaError(ValueError):
    """An unsupported schema; ``str(exc)`` is the 400 message."""


def _resolve(ref: str, root: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"{where}: external $ref is not supported ({ref!r}); use #/$defs/...")
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"{where}: $ref {ref!r} does not resolve")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaError(f"{where}: $ref {ref!r} does not point at a schema")
    return node


def _check(node: Any, root: Mapping[str, Any], where: str, refs: tuple[str, ...]) -> None:
    if isinstance(node, bool) or not isinstance(node, Mapping):
        return  # a non-object subschema is treated as "any value"; generation emits a string
    for key in _UNSUPPORTED:
        if key in node:
            raise SchemaError(f"{where}: the '{key}' keyword is not supported in structured outputs")
    if "minItems" in node and node["minItems"] not in (0, 1):
        raise SchemaError(f"{where}: minItems values other than 0 or 1 are not supported")
    if "additionalProperties" in node and node["additionalProperties"] is not False:
        raise SchemaError(f"{where}: 'additionalProperties' must be explicitly set to false")
    if "pattern" in node:
        raise SchemaError(f"{where}: 'pattern' is not supported by the emulator (the API supports a subset)")
    enum = node.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum:
            raise SchemaError(f"{where}: 'enum' must be a non-empty list")
        if any(isinstance(v, dict | list) for v in enum):
            raise SchemaError(f"{where}: complex types in 'enum' are not supported")
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in refs:
            raise SchemaError(f"{where}: recursive schemas are not supported ({ref!r})")
        _check(_resolve(ref, root, where), root, f"{where}.$ref", (*refs, ref))
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            _check(sub, root, f"{where}.properties.{name}", refs)
    if "items" in node:
        _check(node["items"], root, f"{where}.items", refs)
    for key in ("anyOf", "allOf"):
        branches = node.get(key)
        if isinstance(branches, list):
            for i, sub in enumerate(branches):
                _check(sub, root, f"{where}.{key}.{i}", refs)


def schema_error(schema: Any, where: str = "output_config.format.schema") -> str | None:
    """The 400 message for an unsupported schema, or None."""
    if not isinstance(schema, Mapping):
        return f"{where}: Input should be a valid dictionary"
    try:
        _check(schema, schema, where, ())
    except SchemaError as exc:
        return str(exc)
    return None


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class _Generator:
    def __init__(self, root: Mapping[str, Any], prompt: str) -> None:
        self.root = root
        self.prompt = prompt
        self.document = " ".join(split_instruction(prompt).split())
        self.prompt_words = set(words(prompt))
        sentences = [s for s in _SENTENCE.split(self.document) if s]
        self.sentence = sentences[0] if sentences else self.document
        self.word_count = len(self.document.split())

    def enum(self, values: list[Any]) -> Any:
        best, best_score = None, 0
        for value in values:
            score = len(set(words(str(value))) & self.prompt_words) if isinstance(value, str) else 0
            if score > best_score:
                best, best_score = value, score
        if best is not None:
            return best
        return values[_hash(self.prompt) % len(values)]

    def string(self, name: str) -> str:
        lowered = name.lower()
        if any(hint in lowered for hint in ("title", "name", "topic", "label", "keyword", "tag")):
            return " ".join(self.document.split()[:6]) or name
        return self.sentence[:500] or name

    def value(self, node: Any, name: str = "value", depth: int = 0) -> Any:
        if isinstance(node, bool) or not isinstance(node, Mapping) or depth > 32:
            return self.string(name)
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return self.enum(node["enum"])
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.value(_resolve(ref, self.root, name), name, depth + 1)
        all_of = node.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged: dict[str, Any] = {}
            for sub in all_of:
                resolved = self._deref(sub)
                for key, val in resolved.items():
                    if key in ("properties",) and isinstance(val, Mapping):
                        merged.setdefault("properties", {}).update(val)
                    elif key == "required" and isinstance(val, list):
                        merged.setdefault("required", []).extend(val)
                    else:
                        merged.setdefault(key, val)
            return self.value(merged, name, depth + 1)
        any_of = node.get("anyOf")
        if isinstance(any_of, list) and any_of:
            branches = [b for b in any_of if not (isinstance(b, Mapping) and b.get("type") == "null")]
            return self.value((branches or any_of)[0], name, depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in node else "array" if "items" in node else "string"
        if kind == "object":
            properties = node.get("properties")
            out: dict[str, Any] = {}
            if isinstance(properties, Mapping):
                for prop, sub in properties.items():
                    out[str(prop)] = self.value(sub, str(prop), depth + 1)
            return out
        if kind == "array":
            return [self.value(node.get("items", {}), name, depth + 1)]
        if kind == "integer":
            return self.word_count
        if kind == "number":
            return float(self.word_count)
        if kind == "boolean":
            return bool(set(words(name)) & self.prompt_words) or _hash(self.prompt + name) % 2 == 0
        if kind == "null":
            return None
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        return self.string(name)

    def _deref(self, node: Any) -> Mapping[str, Any]:
        if isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            return _resolve(node["$ref"], self.root, "allOf")
        return node if isinstance(node, Mapping) else {}


def generate(schema: Any, prompt: str) -> Any:
    """A value that validates against ``schema`` (checked with :func:`schema_error` first)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Generator(root, prompt).value(schema)
