"""harvest_defs: bulk Claude Message Batches and Voyage embeddings with dlt, as a Dagster code location.

The public names of the original guide are importable from here. They are resolved lazily so that
importing the package (which every Dagster run process does) does not import the API SDKs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "claude_message_batches": "harvest_defs.harvest.claude",
    "voyage_embeddings_batch": "harvest_defs.harvest.voyage",
    "create_duckdb_pipeline": "harvest_defs.harvest.pipeline",
    # Dagster component types (the dg registry module is this package: `dg list components`).
    "ClaudeBatchHarvest": "harvest_defs.components",
    "VoyageEmbeddings": "harvest_defs.components",
    "RagIndex": "harvest_defs.components",
}

__all__ = sorted(_EXPORTS)


_COMPONENTS = ("ClaudeBatchHarvest", "RagIndex", "VoyageEmbeddings")


def __dir__() -> list[str]:
    """dg discovers component types by ``getattr`` over ``dir()``: list them, but not the library names,
    whose resolution would import the SDKs and pyarrow into every process that loads the code location."""
    return sorted({*globals(), *_COMPONENTS})


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harvest_defs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
