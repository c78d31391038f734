"""``harvest_defs.VoyageEmbeddings``: Voyage embeddings of an upstream table, declared in YAML.

``preset: summaries`` is the shipped chain's embedding step — exactly today's ``summary_embeddings``
asset (real-time API below ``batch_threshold`` texts per partition, the Batch API at or above it),
``voyage_batch_sensor`` and its checks, built by the same builders as ``build_defs``; model, dims and
threshold are settings of the ``voyage`` resource there. Other upstream tables are not supported yet:
the loader says so rather than building something that does not keep the chain's guarantees.
"""

from dataclasses import dataclass
from typing import Literal

import dagster as dg

from harvest_defs.components.shared import ComponentConfigError, shared_definitions, yaml_path


@dataclass
class VoyageEmbeddings(dg.Component, dg.Resolvable):
    """Voyage embeddings (native FLOAT[dim]) of an upstream table's text column."""

    preset: Literal["summaries"] | None = None
    upstream: str | None = None
    text_column: str = "response"
    id_column: str = "custom_id"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.preset != "summaries":
            raise ComponentConfigError(
                yaml_path(context),
                "preset",
                "only `preset: summaries` (claude_summaries → summary_embeddings) is supported so far",
            )
        from harvest_defs.defs.assets.chunks import build_chunk_embeddings_asset
        from harvest_defs.defs.assets.voyage import build_embeddings_assets
        from harvest_defs.defs.build import _definition_pipelines_dir
        from harvest_defs.defs.checks import embedding_dimensions, every_summary_embedded
        from harvest_defs.defs.partitions import collection_partitions
        from harvest_defs.defs.sensors import build_sensors, sensor_interval_seconds

        sensors = build_sensors(sensor_interval_seconds())
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[
                    build_embeddings_assets(collection_partitions(), _definition_pipelines_dir()),
                    # issue 15: the passages ride in the same collect run (claude_batch_sensor asks for both)
                    build_chunk_embeddings_asset(collection_partitions(), _definition_pipelines_dir()),
                ],
                asset_checks=[embedding_dimensions, every_summary_embedded],
                sensors=[s for s in sensors if s.name == "voyage_batch_sensor"],
            ),
            shared_definitions(),
        )
