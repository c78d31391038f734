"""Voyage embeddings harvester: saturates the rate limit, never re-embeds, keeps vectors native.

- ``voyage_embeddings_batch`` — the dlt resource (real-time API, or the Batch API above a threshold);
- ``VoyageBatchHarvester`` — non-blocking Batch API submit/poll/collect with the ledger's resume guarantees;
- ``embedding_column_hints`` — dlt hints for a native ``FLOAT[dim]`` column.

Modules: ``settings`` (per-model limits), ``packing`` (validation, token estimate, request packing),
``ratelimit`` (sliding-window RPM/TPM limiter), ``client`` (credentials, SDK clients), ``realtime``,
``batch``, ``cache`` (destination lookup), ``arrow`` (schema), ``resource``.
"""

from harvest_defs.harvest.voyage.batch import BatchProgress, SubmitReport, VoyageBatchHarvester
from harvest_defs.harvest.voyage.packing import InvalidInputsError, estimate_tokens
from harvest_defs.harvest.voyage.realtime import EmbedFailure, RealtimeEmbedder, RealtimeReport
from harvest_defs.harvest.voyage.resource import embedding_column_hints, voyage_embeddings_batch
from harvest_defs.harvest.voyage.settings import MODELS, VoyageModel, model_spec

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
