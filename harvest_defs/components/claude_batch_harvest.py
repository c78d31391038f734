"""``harvest_defs.ClaudeBatchHarvest``: a Claude Message Batches harvest declared in a ``defs.yaml``.

Two shapes, one type:
- ``preset: corpus_summaries`` is the shipped chain's Claude half — exactly today's assets
  (``documents``, ``claude_summary_batches``, ``claude_summaries``, ``rag_answers``) and sensors
  (``corpus_sensor``, ``claude_batch_sensor``), built by the same builders ``build_defs`` uses; its model
  and prompt are settings of the ``anthropic`` resource, which ``model``, ``max_tokens``, ``temperature``,
  ``system_prompt`` and ``prompt_template`` (a ``{text}`` format string) in its YAML override.
- otherwise a harvest of your own: any source, a Jinja2 prompt over the row's columns, an optional output
  schema (typed columns), partitions by a column, a budget. Assets ``<name>_batches`` and ``<name>``,
  sensor ``<name>_sensor``, table ``harvest.<table>`` in the warehouse.

Every check that can be made at load time is (``dg check defs``): the error names the YAML file and field.
"""

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from harvest_defs.components.scaffold import HarvestScaffolder
from harvest_defs.components.shared import ComponentConfigError, shared_definitions, yaml_path

CHAIN_PRESET = "corpus_summaries"
# What the chain preset may set in YAML: settings of its `anthropic` resource (defaults unchanged if unset).
CHAIN_SETTINGS = frozenset({"model", "max_tokens", "temperature", "system_prompt", "prompt_template"})


class SourceModel(dg.Model):
    """Exactly one of: ``files`` (a glob, relative to this folder), ``sql``, ``asset``, ``corpus``."""

    files: str | None = Field(default=None, description="Parquet/CSV/JSONL glob, relative to this folder")
    sql: str | None = Field(default=None, description="A query over the warehouse DuckDB (schema harvest)")
    asset: str | None = Field(default=None, description="An upstream asset whose table is harvest.<asset>")
    table: str | None = Field(default=None, description="With asset: its table, if not harvest.<asset>")
    corpus: str | None = Field(default=None, description="A corpus folder ('' = $HARVEST_CORPUS)")


class FewShotModel(dg.Model):
    input: str
    output: str


class PartitionsModel(dg.Model):
    column: str | None = Field(default=None, description="One partition per value of this column")
    folder: bool = Field(default=False, description="Corpus sources: one partition per collection folder")


class ClaudeBatchHarvestModel(dg.Model):
    """The ``attributes:`` of a ``ClaudeBatchHarvest`` (its JSON schema is what ``dg`` validates)."""

    name: str = Field(default="claude_harvest", description="Asset key and table name (lower_snake_case)")
    preset: Literal["corpus_summaries"] | None = Field(default=None, description="The shipped chain")
    source: SourceModel | None = None
    id_column: str = Field(default="id", description="Unique per row: the custom_id and merge key")
    prompt_template: str | None = Field(default=None, description="Jinja2 over the row's columns")
    system_prompt: str | None = None
    few_shot: list[FewShotModel] | None = Field(default=None, description="Examples in the cached prefix")
    model: str = Field(default="claude-haiku-5-5", description="A model of the price table")
    max_tokens: int = 300
    temperature: float | None = None
    output_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema: typed columns")
    partitions: PartitionsModel | None = None
    max_usd: float | None = Field(
        default=None, description="Per submit run: fail before paying when its upper-bound estimate is above"
    )
    max_usd_total: float | None = Field(
        default=None,
        description="Per instance, all submit runs together (upper-bound estimates of what was sent)",
    )
    table: str | None = Field(default=None, description="Table in the warehouse (default: name)")


@dg.scaffold_with(HarvestScaffolder)  # `dg scaffold defs` writes a working example, with sample rows
class ClaudeBatchHarvest(dg.Component):
    """A Claude Message Batches harvest: rows → prompts → batches (50% off) → a typed DuckDB table.

    Not ``dg.Resolvable``: that would render ``{{ ... }}`` in the YAML at load time, and the prompt
    template's ``{{ column }}`` placeholders are meant for each row at run time (and ``model`` would
    shadow ``Resolvable.model()``).
    """

    def __init__(self, config: ClaudeBatchHarvestModel) -> None:
        self.config = config

    @classmethod
    def get_model_cls(cls) -> type[ClaudeBatchHarvestModel]:
        return ClaudeBatchHarvestModel

    @classmethod
    def load(cls, attributes: Any, context: dg.ComponentLoadContext) -> "ClaudeBatchHarvest":
        if attributes is None:
            return cls(ClaudeBatchHarvestModel())
        if isinstance(attributes, ClaudeBatchHarvestModel):
            return cls(attributes)
        # exclude_unset: which fields the YAML sets matters (the chain's overrides of the resource)
        return cls(ClaudeBatchHarvestModel.model_validate(attributes.model_dump(exclude_unset=True)))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.config.preset == CHAIN_PRESET:
            return self._chain_defs(context)
        from harvest_defs.components.harvest_assets import build_collect_asset, build_submit_asset
        from harvest_defs.components.harvest_sensor import build_harvest_sensor
        from harvest_defs.defs.sensors import sensor_interval_seconds

        spec = self.spec(context)
        partitions = (
            dg.DynamicPartitionsDefinition(name=spec.partitions_name) if spec.partition_column else None
        )
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[build_submit_asset(spec, partitions), build_collect_asset(spec, partitions)],
                sensors=[build_harvest_sensor(spec, sensor_interval_seconds())],
            ),
            shared_definitions(context),
        )

    def _chain_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from harvest_defs.defs.assets.answers import rag_answers
        from harvest_defs.defs.assets.claude import build_collect_assets, build_submit_asset
        from harvest_defs.defs.assets.documents import build_documents_asset
        from harvest_defs.defs.build import _definition_pipelines_dir
        from harvest_defs.defs.checks import failed_request_ratio
        from harvest_defs.defs.partitions import collection_partitions
        from harvest_defs.defs.sensors import build_sensors, sensor_interval_seconds

        self._check_chain_overrides(yaml_path(context))
        for field in (
            "source",
            "output_schema",
            "partitions",
            "max_usd",
            "max_usd_total",
            "few_shot",
        ):
            if getattr(self.config, field) is not None:
                raise ComponentConfigError(
                    yaml_path(context),
                    field,
                    f"not a setting of preset {CHAIN_PRESET} (it takes {sorted(CHAIN_SETTINGS)}); remove it",
                )
        partitions = collection_partitions()
        sensors = build_sensors(sensor_interval_seconds())
        return dg.Definitions.merge(
            dg.Definitions(
                assets=[
                    build_documents_asset(partitions),
                    build_submit_asset(partitions),
                    build_collect_assets(partitions, _definition_pipelines_dir()),
                    rag_answers,
                ],
                asset_checks=[failed_request_ratio],
                sensors=[s for s in sensors if s.name in ("corpus_sensor", "claude_batch_sensor")],
            ),
            shared_definitions(context),
        )

    def chain_settings(self) -> tuple[tuple[str, Any], ...] | None:
        """For the chain preset: the ``anthropic`` resource settings its YAML sets (sorted), else None."""
        if self.config.preset != CHAIN_PRESET:
            return None
        given = self.config.model_fields_set & CHAIN_SETTINGS
        return tuple(sorted((name, getattr(self.config, name)) for name in given))

    def _check_chain_overrides(self, path: Path) -> None:
        from harvest_defs.harvest.pricing import claude_model_known

        given = self.config.model_fields_set
        if "model" in given and not claude_model_known(self.config.model):
            raise ComponentConfigError(
                path, "model", f"unknown model {self.config.model!r} (not in prices.toml)"
            )
        if "max_tokens" in given and self.config.max_tokens < 1:
            raise ComponentConfigError(path, "max_tokens", "must be >= 1")
        template = self.config.prompt_template
        if template is not None:
            try:
                rendered = template.format(text="\0")
            except (KeyError, IndexError, ValueError) as exc:
                raise ComponentConfigError(
                    path, "prompt_template", f"the chain's template takes one placeholder, {{text}}: {exc!r}"
                ) from exc
            if "\0" not in rendered:
                raise ComponentConfigError(path, "prompt_template", "must contain {text} (the document)")

    def spec(self, context: dg.ComponentLoadContext) -> Any:
        """The checked, resolved instance; every problem names this YAML file and the field."""
        from harvest_defs.components.validate import resolve_spec

        return resolve_spec(self.config, Path(context.path), yaml_path(context), context)

    def asset_keys(self) -> set[str]:
        """The keys this instance produces, without building it (for other instances' upstream checks)."""
        if self.config.preset == CHAIN_PRESET:
            return {"documents", "claude_summary_batches", "claude_summaries", "rag_answers"}
        return {self.config.name, f"{self.config.name}_batches"}
