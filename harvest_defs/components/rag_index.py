"""``harvest_defs.RagIndex``: the DuckDB RAG index (FLOAT[dim] + HNSW, BM25) over embeddings tables.

``preset: summaries`` is the shipped chain's ``rag_index`` (vectors of the summaries, the text shown to
the answerer = summary + the document it summarizes), with ``rag_index_sensor`` and ``index_fresh``.
"""

from dataclasses import dataclass
from typing import Literal

import dagster as dg

from harvest_defs.components.shared import ComponentConfigError, shared_definitions, yaml_path


@dataclass
class RagIndex(dg.Component, dg.Resolvable):
    """Which embeddings to index, and the text the answerer is shown."""

    preset: Literal["summaries"] | None = None
    embeddings: list[str] | None = None
    answer_text: Literal["summary_and_document", "embedded_text"] = "summary_and_document"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.preset != "summaries" or self.answer_text != "summary_and_document":
            raise ComponentConfigError(
                yaml_path(context),
                "preset",
                "only `preset: summaries` (summary_embeddings, summary + document shown) is supported so far",
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
            shared_definitions(),
        )
