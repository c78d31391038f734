"""Voyage embeddings harvester: saturates the rate limit, never re-embeds, keeps vectors native.

- ``voyage_embeddings_batch`` — the dlt resource (real-time API, or the Batch API above a threshold);
- ``VoyageBatchHarvester`` — non-blocking Batch API submit/poll/collect with the ledger's resume guarantees;
- ``embedding_column_hints`` — dlt hints for a native ``FLOAT[dim]`` column.

Modules: ``settings`` (per-model limits), ``packing`` (validation, token estimate, request packing),
``ratelimit`` (sliding-window RPM/TPM limiter), ``client`` (credentials, SDK clients), ``realtime``,
``batch``, ``cache`` (destination lookup), ``arrow`` (schema), ``resource``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harvest_defs.harvest.voyage.batch import BatchProgress, SubmitReport, VoyageBatchHarvester
    from harvest_defs.harvest.voyage.packing import InvalidInputsError, estimate_tokens
    from harvest_defs.harvest.voyage.realtime import EmbedFailure, RealtimeEmbedder, RealtimeReport
    from harvest_defs.harvest.voyage.resource import embedding_column_hints, voyage_embeddings_batch
    from harvest_defs.harvest.voyage.settings import MODELS, VoyageModel, model_spec

# Lazy re-exports (PEP 562): ``harvest_defs.harvest.voyage.settings`` (model limits, read when a code
# location loads to check a VoyageEmbeddings instance) must not import numpy, pyarrow and the SDK clients.
_EXPORTS = {
    "BatchProgress": "batch",
    "SubmitReport": "batch",
    "VoyageBatchHarvester": "batch",
    "InvalidInputsError": "packing",
    "estimate_tokens": "packing",
    "EmbedFailure": "realtime",
    "RealtimeEmbedder": "realtime",
    "RealtimeReport": "realtime",
    "embedding_column_hints": "resource",
    "voyage_embeddings_batch": "resource",
    "MODELS": "settings",
    "VoyageModel": "settings",
    "model_spec": "settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "MODELS",
    "BatchProgress",
    "EmbedFailure",
    "InvalidInputsError",
    "RealtimeEmbedder",
    "RealtimeReport",
    "SubmitReport",
    "VoyageBatchHarvester",
    "VoyageModel",
    "embedding_column_hints",
    "estimate_tokens",
    "model_spec",
    "voyage_embeddings_batch",
]
