"""Declared-unique merges for the Dagster layer's warehouse loads: what keeps them in bounded memory.

Why: dlt's plain ``merge`` deduplicates the staging table with ``ROW_NUMBER() OVER (PARTITION BY key)``
before its delete-insert. DuckDB's window operator holds every row at once and cannot spill, so with
1024-d vectors a load needed ~1.2 GB above the extract per 50k rows and failed outright under a fixed
``memory_limit`` (``harvest/voyage/unique.py``). With each key yielded once per load, the resource may
declare ``harvest.dedup.MERGE_DISPOSITION`` (``deduplicated``): dlt skips the window, and what is left
(inserts and a key-only delete) streams and spills, so the warehouse load runs under
``HarvestStoreResource.warehouse_memory_limit`` (512 MB by default).

The promise is kept here, not assumed: every table passes ``harvest.dedup.unique_rows``, a first-occurrence
filter whose memory of the ids seen is a SQLite file (bounded at millions of rows).
Callers yield the freshest rows first (cache hits for the current text, then batches newest first:
``defs.batches.newest_first``), so "latest row wins" holds. Postgres takes the same disposition (dlt's
delete-insert without the dedup pass); nothing here is DuckDB-specific.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.warehouse import DATASET, loading

if TYPE_CHECKING:
    import pyarrow as pa


def scratch_dir(store: HarvestStoreResource) -> Path:
    """Where the seen-ids files live during a load (deleted when it ends): beside the raw results."""
    return store.raw_dir / "scratch"


def unique_resource(
    tables: Iterable[pa.Table],
    *,
    name: str,
    primary_key: str,
    columns: dict[str, Any] | None = None,
    scratch: Path | str | None = None,
) -> Any:
    """A dlt resource merging ``tables`` on ``primary_key`` without dlt's dedup window (each key once)."""
    import dlt

    from harvest_defs.harvest.dedup import MERGE_DISPOSITION, unique_rows

    return dlt.resource(
        unique_rows(tables, primary_key, scratch),
        name=name,
        write_disposition=MERGE_DISPOSITION,
        primary_key=primary_key,
        columns=columns or {},
    )


def load_unique(
    store: HarvestStoreResource,
    pipeline_name: str,
    tables: Iterable[pa.Table],
    *,
    name: str,
    primary_key: str,
    columns: dict[str, Any] | None = None,
    dataset_name: str = DATASET,
) -> Any:
    """Merge ``tables`` into ``<dataset>.<name>`` under the warehouse's write lock (either backend).

    For the loads that are not ``@dlt_assets`` (components, ``rag_answers``); returns dlt's load info.
    """
    resource = unique_resource(
        tables, name=name, primary_key=primary_key, columns=columns, scratch=scratch_dir(store)
    )
    with loading(store, pipeline_name, dataset_name) as pipeline:
        return pipeline.run(resource, **store.warehouse().run_kwargs())
