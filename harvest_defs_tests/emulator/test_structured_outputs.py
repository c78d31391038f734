"""Structured outputs (``output_config.format``): the text is JSON valid against the schema (jsonschema)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.emulator.clients import client

MODEL = "claude-sonnet-4-6"
DOC = "The ledger records every batch before creation. Nothing is paid twice. Results stay 29 days."
PROMPT = f"Extract the facts as JSON. The sentiment is positive.\n\n<document>{DOC}</document>"

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
LEAVES = st.one_of(
    st.sampled_from(
        [
            {"type": "string"},
            {"type": "integer"},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "email"},
            {"type": ["string", "null"]},
        ]
    ),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5, unique=True).map(
        lambda values: {"type": "string", "enum": values}
    ),
    st.integers(-5, 5).map(lambda v: {"const": v}),
)


def _object(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
        required = data.draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    return st.builds(build, st.dictionaries(NAMES, children, max_size=5), st.data())


SCHEMAS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        _object(children),
        st.builds(
            lambda items, n: {"type": "array", "items": items, "minItems": n},
            children,
            st.sampled_from([0, 1]),
        ),
        st.builds(lambda a, b: {"anyOf": [a, b]}, children, children),
    ),
    max_leaves=12,
)


def structured(emulator: EmulatorServer, schema: Any, prompt: str = PROMPT, max_tokens: int = 2000) -> Any:
    return client(emulator).messages.create(
        model=MODEL,
        max_tokens=max_tokens,
        messages=[{"role": "user", "content": prompt}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=_object(SCHEMAS))
def test_generated_json_validates_against_generated_schemas(
    emulator: EmulatorServer, schema: dict[str, Any]
) -> None:
    message = structured(emulator, schema)
    (block,) = message.content
    assert block.type == "text" and message.stop_reason == "end_turn"
    value = json.loads(block.text)
    jsonschema.validate(value, schema)
    assert set(value) == set(schema["properties"])  # every declared property, nothing else


def test_values_come_from_the_prompt(emulator: EmulatorServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "sentiment": {"type": "string", "enum": ["negative", "neutral", "positive"]},
            "word_count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "source": {"$ref": "#/$defs/source"},
        },
        "required": ["title", "summary", "sentiment", "word_count", "tags", "source"],
        "additionalProperties": False,
        "$defs": {
            "source": {
                "type": "object",
                "properties": {"url": {"type": "string", "format": "uri"}},
                "required": ["url"],
                "additionalProperties": False,
            }
        },
    }
    value = json.loads(structured(emulator, schema).content[0].text)
    jsonschema.validate(value, schema)
    assert value["sentiment"] == "positive"  # the enum member the prompt mentions
    assert value["summary"] == "The ledger records every batch before creation."  # quotes the document
    assert value["title"] == "The ledger records every batch before"
    assert value["word_count"] == len(DOC.split())
    again = json.loads(structured(emulator, schema).content[0].text)
    assert again == value  # deterministic


def test_enum_without_a_keyword_match_is_a_stable_hash_pick(emulator: EmulatorServer) -> None:
    schema = {
        "type": "object",
        "properties": {"c": {"enum": ["red", "green", "blue"]}},
        "required": ["c"],
        "additionalProperties": False,
    }
    picks = {
        json.loads(structured(emulator, schema, f"Classify item {i}").content[0].text)["c"] for i in range(12)
    }
    assert picks <= {"red", "green", "blue"} and len(picks) > 1


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "integer", "minimum": 0}, "'minimum' keyword is not supported"),
        ({"type": "string", "maxLength": 5}, "'maxLength' keyword is not supported"),
        ({"type": "array", "items": {"type": "string"}, "minItems": 3}, "minItems values other than 0 or 1"),
        (
            {"type": "object", "properties": {}, "additionalProperties": True},
            "must be explicitly set to false",
        ),
        (
            {
                "$ref": "#/$defs/node",
                "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
            },
            "recursive schemas are not supported",
        ),
        ({"$ref": "https://example.com/schema.json"}, "external $ref is not supported"),
        ({"enum": [{"a": 1}]}, "complex types in 'enum'"),
    ],
)
def test_unsupported_schema_features_are_400(
    emulator: EmulatorServer, schema: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        structured(emulator, schema)
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert fragment in message and message.startswith("output_config.format.schema")


def test_structured_output_inside_a_batch(emulator: EmulatorServer) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    api = client(emulator)
    batch = api.messages.batches.create(
        requests=[
            {
                "custom_id": "s",
                "params": {
                    "model": MODEL,
                    "max_tokens": 100,
                    "messages": [{"role": "user", "content": "Is it ok?"}],
                    "output_config": {"format": {"type": "json_schema", "schema": schema}},
                },
            }
        ]
    )
    (result,) = list(api.messages.batches.results(batch.id))
    assert result.result.type == "succeeded"
    jsonschema.validate(json.loads(result.result.message.content[0].text), schema)  # type: ignore[union-attr]
