"""``harvest_defs.VoyageEmbeddings``: Voyage embeddings of an upstream table's text column, declared in YAML.

Two shapes, one type:
- ``preset: summaries`` is the shipped chain's embedding step — exactly today's ``summary_embeddings``
  asset (real-time API below the ``voyage`` resource's ``batch_threshold`` texts per partition, the Batch
  API at or above it), ``voyage_batch_sensor`` and its checks, built by the same builders as ``build_defs``.
- otherwise any upstream asset's table (e.g. a ``ClaudeBatchHarvest``'s output): a text column, an id
  column, model, dimension, input type and Batch API threshold of its own. Asset ``<name>`` (table
  ``harvest.<table>``, native ``FLOAT[dims]``), sensor ``<name>_sensor``, check ``<name>_dimensions``.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from harvest_defs.components.shared import ComponentConfigError, shared_definitions, yaml_path

PRESET = "summaries"


class VoyageEmbeddingsModel(dg.Model):
    """The ``attributes:`` of a ``VoyageEmbeddings`` (its JSON schema is what ``dg`` validates)."""

    preset: Literal["summaries"] | None = Field(default=None, description="The shipped chain's step")
    name: str | None = Field(default=None, description="Asset key and table (default <upstream>_embeddings)")
    upstream: str | None = Field(default=None, description="The asset whose table holds the texts")
    upstream_table: str | None = Field(default=None, description="Its table, if not harvest.<upstream>")
    text_column: str = Field(default="response", description="The column to embed")
    id_column: str = Field(default="custom_id", description="Unique per row: the embedding_id")
    model: str = Field(default="voyage-3.5", description="A Voyage embedding model")
    dims: int | None = Field(default=None, description="output_dimension (None: the model's default)")
    input_type: Literal["document", "query"] | None = "document"
    batch_threshold: int = Field(default=10_000, description="Texts at/above which the Batch API is used")
    partitions: Literal["upstream"] | None = Field(
        default=None, description="`upstream`: one run per partition of a partitioned upstream harvest"
    )
    table: str | None = Field(default=None, description="Table in the warehouse (default: name)")


class VoyageEmbeddings(dg.Component):
    """Voyage embeddings (native FLOAT[dim]) of an upstream table's text column.

    Not ``dg.Resolvable`` (like ``ClaudeBatchHarvest``): a ``model`` field shadows ``Resolvable.model()``.
    """

    def __init__(self, config: VoyageEmbeddingsModel) -> None:
        self.config = config

    @classmethod
    def get_model_cls(cls) -> type[VoyageEmbeddingsModel]:
        return VoyageEmbeddingsModel

    @classmethod
    def load(cls, attributes: Any, context: dg.ComponentLoadContext) -> VoyageEmbeddings:
        if attributes is None:
            return cls(VoyageEmbeddingsModel())
        if isinstance(attributes, VoyageEmbeddingsModel):
            return cls(attributes)
        return cls(VoyageEmbeddingsModel.model_validate(attributes.model_dump(exclude_unset=True)))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.config.preset == PRESET:
            return self._chain_defs(context)
        from harvest_defs.components.embeddings_assets import build_embeddings_asset
        from harvest_defs.components.embeddings_check import build_dimensions_check
        from harvest_defs.components.embeddings_sensor import build_embeddings_sensor
        from harvest_defs.components.embeddings_spec import resolve_embeddings
        from harvest_defs.components.load_checks import check_partitioned_upstream, check_upstream
        from harvest_defs.defs.sensors import sensor_interval_seconds

        spec = resolve_embeddings(self.config, yaml_path(context))
        check_upstream(context, spec.upstream, yaml_path(context), "upstream")
        if spec.partitioned:
            check_partitioned_upstream(context, spec.upstream, yaml_path(context))
        partitions = dg.DynamicPartitionsDefinition(name=spec.partitions_name) if spec.partitioned else None
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[build_embeddings_asset(spec, partitions)],
                asset_checks=[build_dimensions_check(spec)],
                sensors=[build_embeddings_sensor(spec, sensor_interval_seconds())],
            ),
            shared_definitions(context),
        )

    def asset_keys(self) -> set[str]:
        """The keys this instance produces, without building it (for other instances' upstream checks)."""
        if self.config.preset == PRESET:
            return {"summary_embeddings"}
        return {self.config.name or f"{(self.config.upstream or '').split('/')[-1]}_embeddings"}

    def _chain_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        defaults = VoyageEmbeddingsModel().model_dump()
        extra = sorted(k for k, v in self.config.model_dump().items() if k != "preset" and v != defaults[k])
        if extra:
            raise ComponentConfigError(
                yaml_path(context),
                extra[0],
                f"preset {PRESET} takes its settings from the `voyage` resource; remove {extra}",
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
            shared_definitions(context),
        )
