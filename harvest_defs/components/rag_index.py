"""``harvest_defs.RagIndex``: a DuckDB RAG index (FLOAT[dim] + HNSW, BM25) over embeddings tables.

Two shapes, one type:
- ``preset: summaries`` is the shipped chain's ``rag_index`` (vectors of the summaries, the text shown to
  the answerer = summary + the document it summarizes), with ``rag_index_sensor`` and ``index_fresh``.
- otherwise: which ``VoyageEmbeddings`` tables to index and, per table, the text shown to the answerer
  (a column of the embeddings table, or of its upstream table joined on the id). Asset ``<name>`` builds
  ``$HARVEST_HOME/<name>.duckdb`` through ``rag.index.build_index`` (incremental, swapped in atomically);
  ``<name>_sensor`` requests it after any of its embeddings lands. Search it with
  ``harvest_defs.rag.search(query, rag_path=...)`` or ``harvest ask --index``.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from harvest_defs.components.shared import ComponentConfigError, shared_definitions, yaml_path

PRESET = "summaries"


class TextFromModel(dg.Model):
    """The shown text from another table (e.g. the upstream harvest), joined on the embedding id."""

    table: str = Field(description="<table> (schema harvest) or <schema>.<table>")
    column: str = Field(description="The column shown to the answerer")
    id_column: str = Field(default="custom_id", description="Its column matching embedding_id")


class IndexedEmbeddingsModel(dg.Model):
    asset: str = Field(description="A VoyageEmbeddings instance's asset key")
    table: str | None = Field(default=None, description="Its table, if not harvest.<asset>")
    text_column: str = Field(
        default="text", description="Column of the embeddings table shown (default: the embedded text)"
    )
    text_from: TextFromModel | None = Field(default=None, description="Or: a column of another table")


class RagIndexModel(dg.Model):
    preset: Literal["summaries"] | None = Field(default=None, description="The shipped chain's index")
    name: str | None = Field(default=None, description="Asset key; the index file is <name>.duckdb")
    embeddings: list[IndexedEmbeddingsModel] | None = None
    path: str | None = Field(default=None, description="Index file (default $HARVEST_HOME/<name>.duckdb)")


class RagIndex(dg.Component):
    """Which embeddings to index, and the text the answerer is shown."""

    def __init__(self, config: RagIndexModel) -> None:
        self.config = config

    @classmethod
    def get_model_cls(cls) -> type[RagIndexModel]:
        return RagIndexModel

    @classmethod
    def load(cls, attributes: Any, context: dg.ComponentLoadContext) -> RagIndex:
        if attributes is None:
            return cls(RagIndexModel())
        if isinstance(attributes, RagIndexModel):
            return cls(attributes)
        return cls(RagIndexModel.model_validate(attributes.model_dump(exclude_unset=True)))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.config.preset == PRESET:
            return self._chain_defs(context)
        from harvest_defs.components.load_checks import check_upstream
        from harvest_defs.components.rag_index_assets import (
            build_index_asset,
            build_index_sensor,
            resolve_index,
        )
        from harvest_defs.defs.sensors import sensor_interval_seconds

        spec = resolve_index(self.config, yaml_path(context))
        for n, table in enumerate(spec.tables):
            check_upstream(context, table.asset, yaml_path(context), f"embeddings[{n}].asset")
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[build_index_asset(spec)],
                sensors=[build_index_sensor(spec, sensor_interval_seconds())],
            ),
            shared_definitions(context),
        )

    def asset_keys(self) -> set[str]:
        """The keys this instance produces, without building it (for other instances' upstream checks)."""
        return {"rag_index"} if self.config.preset == PRESET else {self.config.name or ""}

    def _chain_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        for field in ("name", "embeddings", "path"):
            if getattr(self.config, field) is not None:
                raise ComponentConfigError(
                    yaml_path(context),
                    field,
                    f"preset {PRESET} indexes summary_embeddings into rag.duckdb; remove it",
                )
        from harvest_defs.defs.assets.rag import rag_index
        from harvest_defs.defs.checks import index_fresh
        from harvest_defs.defs.sensors import build_sensors, sensor_interval_seconds

        sensors = build_sensors(sensor_interval_seconds())
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[rag_index],
                asset_checks=[index_fresh],
                sensors=[s for s in sensors if s.name == "rag_index_sensor"],
            ),
            shared_definitions(context),
        )
