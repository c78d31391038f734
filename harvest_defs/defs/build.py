"""``build_defs``: the whole code location, optionally over a given corpus folder (tests use their own).

The asset factories take the partitions definition when they decorate, so the graph is assembled here
rather than at module import of each asset file. Partitions are dynamic (``corpus_sensor``).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from harvest_defs.defs.assets.answers import rag_answers
from harvest_defs.defs.assets.chunks import build_chunk_embeddings_asset
from harvest_defs.defs.assets.claude import build_collect_assets, build_submit_asset
from harvest_defs.defs.assets.documents import build_documents_asset
from harvest_defs.defs.assets.rag import rag_index
from harvest_defs.defs.assets.voyage import build_embeddings_assets
from harvest_defs.defs.checks import ALL_CHECKS
from harvest_defs.defs.partitions import collection_partitions
from harvest_defs.defs.resources import HarvestStoreResource, default_resources
from harvest_defs.defs.sensors import build_sensors, sensor_interval_seconds


def _definition_pipelines_dir() -> str:
    """Where the load-time (describe-only) dlt pipelines keep their working folder.

    They never run, so a temp folder keeps loading the code location free of side effects in the cwd.
    """
    return str(Path(tempfile.gettempdir()) / "harvest_defs_definition_pipelines")


def build_defs(
    corpus_dir: Path | str | None = None,
    *,
    sensor_interval: int | None = None,
    resources: dict[str, Any] | None = None,
) -> dg.Definitions:
    """Definitions over ``corpus_dir`` (default ``$HARVEST_CORPUS`` or the packaged sample corpus)."""
    partitions = collection_partitions()  # dynamic: corpus_sensor keeps them equal to the collections
    pipelines_dir = _definition_pipelines_dir()
    with warnings.catch_warnings():
        # `backfill_policy` is beta in Dagster 1.13 and warns at every decoration, i.e. on every code-
        # location load of every run process: 18-30 copies per session. Said once here instead.
        warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
        assets = [
            build_documents_asset(partitions),
            build_submit_asset(partitions),
            build_collect_assets(partitions, pipelines_dir),
            build_embeddings_assets(partitions, pipelines_dir),
            build_chunk_embeddings_asset(partitions, pipelines_dir),
        ]
    bound = default_resources()
    # The corpus is read by runs and sensors, never at load: a folder added later needs no reload.
    bound["store"] = HarvestStoreResource(corpus_dir=str(corpus_dir) if corpus_dir else None)
    bound.update(resources or {})
    return dg.Definitions(
        assets=[*assets, rag_index, rag_answers],
        asset_checks=ALL_CHECKS,
        sensors=build_sensors(sensor_interval or sensor_interval_seconds()),
        resources=bound,
        # One process per run: each step subprocess of the multiprocess executor re-imports the code
        # location (~4 s here), while our steps mostly wait on APIs or on the single DuckDB writer slot.
        # The in-process executor honours the harvest_duckdb pool all the same.
        executor=dg.in_process_executor,
    )
