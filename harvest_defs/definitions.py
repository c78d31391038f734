"""The Dagster code location: ``dagster dev`` (via ``workspace.yaml``) or ``-m harvest_defs.definitions``.

Loading this module imports Dagster, dagster-dlt and our definitions only; the API SDKs are imported by the
assets and sensors when they run (``benchmarks/load_time.py`` keeps it that way).
"""

from harvest_defs.defs.build import build_defs

defs = build_defs()
