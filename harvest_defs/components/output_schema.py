"""An output schema (JSON Schema) → structured outputs, typed columns, and validation of every response.

Why validate what the API already constrains: structured outputs guarantee the shape for supported
schemas, but a truncated response (``max_tokens``), a refusal or a schema feature outside the supported
subset still yields text that is not the object. Such a response is a failure row (``success=false``,
``error_type="output_schema_invalid"``) — never a row of silent nulls — and it is not bought again: the
request succeeded at the API, its raw result is on disk, and the row is rebuilt from it for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA_INVALID = "output_schema_invalid"
# claude_messages' columns (``CLAUDE_MESSAGES_SCHEMA``, spelled out: importing it at load pulls in pyarrow)
# plus the Dagster layer's tags; ``test_components_unit`` keeps the two lists equal.
RESERVED_COLUMNS = frozenset(
    {
        *("batch_id", "custom_id", "prompt", "response", "model", "input_tokens", "output_tokens"),
        *("created_at", "processing_time_ms", "success", "error", "error_type", "request_hash"),
        *("stop_reason", "cache_creation_input_tokens", "cache_read_input_tokens", "result_type"),
        *("partition_key", "_deleted", "truncated"),
    }
)
# JSON Schema "type" → (dlt data type, Arrow type name). Anything else (arrays, objects) is JSON.
_SCALARS = {"string": "text", "integer": "bigint", "number": "double", "boolean": "bool"}


class OutputSchemaError(ValueError):
    """An output schema that cannot be used; the loader names the YAML field."""


def _field_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the non-null member decides
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind is None and "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        kind = "string"
    return _SCALARS.get(str(kind), "json")


@dataclass(frozen=True)
class OutputSchema:
    """A checked object schema: its properties, in order, each with the column type it lands as."""

    schema: dict[str, Any]
    columns: dict[str, str]  # property -> dlt data type

    @classmethod
    def parse(cls, schema: Any) -> OutputSchema:
        """Check the schema is valid JSON Schema and an object of named properties that can be columns."""
        import jsonschema

        if not isinstance(schema, Mapping):
            raise OutputSchemaError("must be a JSON Schema object (a mapping)")
        try:
            jsonschema.Draft202012Validator.check_schema(dict(schema))
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise OutputSchemaError(f"not valid JSON Schema at {where}: {exc.message}") from exc
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), Mapping):
            raise OutputSchemaError('must be {"type": "object", "properties": {...}}: each property a column')
        if schema.get("additionalProperties") is not False:
            raise OutputSchemaError("needs additionalProperties: false (structured outputs require it)")
        properties = schema["properties"]
        clash = sorted(set(properties) & RESERVED_COLUMNS)
        if clash:
            raise OutputSchemaError(f"properties {clash} clash with claude_messages columns; rename them")
        columns = {
            name: _field_type(sub if isinstance(sub, Mapping) else {}) for name, sub in properties.items()
        }
        return cls(schema=dict(schema), columns=columns)

    def output_config(self) -> dict[str, Any]:
        """The ``output_config`` every request carries (structured outputs)."""
        return {"format": {"type": "json_schema", "schema": self.schema}}

    def column_hints(self) -> dict[str, Any]:
        return {name: {"data_type": kind, "nullable": True} for name, kind in self.columns.items()}

    def typed_values(self, response: str | None) -> tuple[dict[str, Any] | None, str | None]:
        """(values by column, None) for a response that validates, else (None, why it does not)."""
        import jsonschema

        if response is None:
            return None, "no response text"
        try:
            data = orjson.loads(response)
        except orjson.JSONDecodeError as exc:
            return None, f"response is not JSON: {exc}"
        validator = jsonschema.Draft202012Validator(self.schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            return None, f"response does not match the output schema at {where}: {first.message}"
        values: dict[str, Any] = {}
        for name, kind in self.columns.items():
            value = data.get(name)
            values[name] = orjson.dumps(value).decode() if kind == "json" and value is not None else value
        return values, None

    def arrow_types(self) -> dict[str, Any]:
        import pyarrow as pa

        types = {"text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}
        return {name: types.get(kind, pa.string()) for name, kind in self.columns.items()}
