"""The Dagster code location, for `dagster dev` / `dg dev` (workspace.yaml) and `-m harvest_defs.definitions`.

The definitions are the component instances under ``harvest_defs/location/`` (``defs.yaml`` files),
loaded the ``dg`` way. Loading imports Dagster, dagster-dlt and our definitions only; the API SDKs are
imported by the assets and sensors when they run (``benchmarks/load_time.py`` keeps it that way).
``harvest_defs.defs.build.build_defs`` still builds the chain alone (tests over their own corpus, demo).
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
