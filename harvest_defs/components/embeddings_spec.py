"""``EmbeddingsSpec``: one generic ``VoyageEmbeddings`` instance, resolved and checked at load time.

Why a spec apart from the YAML model: the asset, its sensor and the index downstream all need the same
names (asset key, table, ledger namespace, partitions) and the same embedding settings (model, dimension,
input type) — the settings are part of every cache key, so they must be computed in exactly one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harvest_defs.components.harvest_spec import ALL_ROWS
from harvest_defs.components.shared import ComponentConfigError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_QUALIFIED = re.compile(r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")
INPUT_TYPES = ("document", "query")


@dataclass(frozen=True)
class EmbeddingsSpec:
    name: str  # asset key and (by default) table name
    table: str  # our table in the warehouse's ``harvest`` schema
    upstream: str  # upstream asset key
    upstream_table: str  # "harvest.<table>"
    text_column: str
    id_column: str
    model: str
    dims: int  # the vector size (FLOAT[dims]); what the cache keys on
    output_dimension: int | None  # what was asked for (None: the model's default)
    input_type: str | None
    batch_threshold: int
    partitioned: bool  # True: the upstream's dynamic partitions, rows by its ``partition_key`` column

    @property
    def qualified_table(self) -> str:
        return f"harvest.{self.table}"

    @property
    def provider(self) -> str:
        """This instance's ledger namespace: its sensor polls and collects only its own Voyage batches."""
        return f"voyage:{self.name}"

    @property
    def partitions_name(self) -> str:
        return f"{self.upstream}_partitions"

    @property
    def sensor_name(self) -> str:
        return f"{self.name}_sensor"

    @staticmethod
    def ledger_partition(partition: str | None) -> str:
        return partition or ALL_ROWS


def _table(value: str, path: Path, field: str) -> str:
    table = value if "." in value else f"harvest.{value}"
    if not _QUALIFIED.match(table):
        raise ComponentConfigError(
            path, field, f"{value!r}: use <table> or <schema>.<table>, lower_snake_case"
        )
    return table


def resolve_embeddings(config: Any, path: Path) -> EmbeddingsSpec:
    """Every check that needs no data: names, model, dimension, input type, threshold, partitions."""
    from harvest_defs.harvest.voyage.settings import MODELS, model_spec

    if not config.upstream:
        raise ComponentConfigError(path, "upstream", "required: the asset whose table holds the texts")
    name = config.name or f"{config.upstream.split('/')[-1]}_embeddings"
    if not _NAME.match(name):
        raise ComponentConfigError(path, "name", f"{name!r}: use lower_snake_case (an asset key)")
    table = config.table or name
    if not _NAME.match(table):
        raise ComponentConfigError(path, "table", f"{table!r}: use lower_snake_case (a DuckDB table)")
    if config.model not in MODELS:
        raise ComponentConfigError(
            path, "model", f"unknown Voyage model {config.model!r}; known: {sorted(MODELS)}"
        )
    try:
        dims = model_spec(config.model).dimension(config.dims)
    except ValueError as exc:
        raise ComponentConfigError(path, "dims", str(exc)) from exc
    if config.input_type is not None and config.input_type not in INPUT_TYPES:
        raise ComponentConfigError(path, "input_type", f"use one of {INPUT_TYPES} or null")
    if config.batch_threshold < 1:
        raise ComponentConfigError(path, "batch_threshold", "must be >= 1")
    for field in ("text_column", "id_column"):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", getattr(config, field)):
            raise ComponentConfigError(path, field, f"{getattr(config, field)!r} is not a column name")
    if config.partitions not in (None, "upstream"):
        raise ComponentConfigError(
            path, "partitions", "use `upstream` (the upstream's partitions) or omit it"
        )
    return EmbeddingsSpec(
        name=name,
        table=table,
        upstream=config.upstream,
        upstream_table=_table(config.upstream_table or config.upstream, path, "upstream_table"),
        text_column=config.text_column,
        id_column=config.id_column,
        model=config.model,
        dims=dims,
        output_dimension=config.dims,
        input_type=config.input_type,
        batch_threshold=config.batch_threshold,
        partitioned=config.partitions == "upstream",
    )
