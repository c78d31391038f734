"""What the ``@dlt_assets`` in this code location share: asset keys, pipelines, and locked runs.

``@dlt_assets`` needs a source and a pipeline when the code location loads, but the real destination path
depends on ``HARVEST_HOME`` at run time (tests, demo and production differ). So the definition-time
pipeline only describes the destination, and each run builds its own pipeline from ``HarvestStoreResource``
and passes it to ``DagsterDltResource.run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from harvest_defs.defs.resources import HarvestStoreResource

DATASET_NAME = "harvest"


@dataclass
class AssetKeyTranslator(DagsterDltTranslator):
    """Names dlt assets after the chain's steps (``claude_summaries``), not ``dlt_<source>_<res>``."""

    keys: Mapping[str, dg.AssetKey] = field(default_factory=dict)
    deps: Sequence[dg.AssetKey] = ()
    description: str | None = None

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(
            key=self.keys.get(data.resource.name, spec.key),
            deps=list(self.deps),
            description=self.description or spec.description,
            group_name="harvest",
        )


def definition_pipeline(pipeline_name: str, pipelines_dir: str) -> Any:
    """A pipeline object that only describes the destination for the asset graph; it never runs."""
    import dlt

    return dlt.pipeline(
        pipeline_name=pipeline_name,
        pipelines_dir=pipelines_dir,
        destination="duckdb",
        dataset_name=DATASET_NAME,
    )


def runtime_pipeline(pipeline_name: str, store: HarvestStoreResource) -> Any:
    """The pipeline a run loads with: into the store's warehouse (the DuckDB file under this run's
    ``HARVEST_HOME``, or Postgres), its working folder under this run's home."""
    return store.warehouse().pipeline(pipeline_name, DATASET_NAME)


def run_dlt_locked(
    context: dg.AssetExecutionContext,
    dlt_resource: DagsterDltResource,
    store: HarvestStoreResource,
    source: Any,
    pipeline_name: str,
    **run_kwargs: Any,
) -> list[dg.MaterializeResult]:
    """Build the run's pipeline and load to completion, all while holding the warehouse's write lock.

    The pipeline is created *inside* the lock: two runs share one dlt working folder per pipeline name,
    and attaching to it while another run is mid-load raced on its temp folders (a FileNotFoundError in
    the other run). ``DagsterDltResource.run`` is lazy (the load happens while iterating), so the results
    are drained inside the lock; yielding them afterwards keeps the lock short and the events unchanged.
    """
    warehouse = store.warehouse()
    with warehouse.lock(exclusive=True):
        pipeline = warehouse.pipeline(pipeline_name, DATASET_NAME)
        # DagsterDltResource drops the pipeline's local state and pending packages before it runs, so a
        # leftover package from a killed run cannot shadow this one (dlt's has_pending_data pitfall).
        kwargs = {**warehouse.run_kwargs(), **run_kwargs}
        results = list(dlt_resource.run(context=context, dlt_source=source, dlt_pipeline=pipeline, **kwargs))
    return [r for r in results if isinstance(r, dg.MaterializeResult)]
