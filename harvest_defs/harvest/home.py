"""Where the library keeps its own files (ledger, raw results) when the caller does not say.

One rule for both harvesters, so a Claude and a Voyage run of the same pipeline share one ledger:
``$HARVEST_HOME`` if set (the Dagster layer and the CLI use it too), else a folder *beside* the active dlt
pipeline's working directory (``<pipelines_dir>/<pipeline_name>.harvest``), else ``./.harvest``. Beside,
not inside: dlt (and ``DagsterDltResource``) may wipe a pipeline's working directory, and the ledger is
the record of batches already paid for.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt

HOME_ENV = "HARVEST_HOME"


def default_home() -> Path:
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit)
    try:
        pipeline = dlt.current.pipeline()
    except Exception:  # no active pipeline (plain script, or outside extract)
        return Path(".harvest")
    working = Path(pipeline.working_dir)
    return working.parent / f"{working.name}.harvest"
