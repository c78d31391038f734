"""Per-model limits of the Voyage embeddings API (docs.voyageai.com, see reference/api_contracts.md §2.3).

Why a table and not constants: every limit the harvester obeys (context window, tokens per request,
allowed ``output_dimension``, tier-1 RPM/TPM) differs by model, and a wrong one either wastes requests
(too small) or gets them rejected with a 400 (too large). Unknown models get the most conservative
values so they still work.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INPUTS_PER_REQUEST = 1000  # documented for every model
BATCH_MAX_INPUTS = 100_000  # Voyage Batch API: inputs per batch
BATCH_ENDPOINT = "/v1/embeddings"
BATCH_COMPLETION_WINDOW = "12h"
FLEXIBLE_DIMS = (256, 512, 1024, 2048)
TIER1_RPM = 2000


@dataclass(frozen=True)
class VoyageModel:
    name: str
    context_tokens: int  # longest single input
    request_tokens: int  # total tokens of one request (after truncation)
    default_dim: int
    dims: tuple[int, ...]  # allowed output_dimension values
    rpm: int  # tier-1 requests per minute
    tpm: int  # tier-1 tokens per minute

    def dimension(self, output_dimension: int | None) -> int:
        """The vector size a request returns; a value the model does not offer is an error up front."""
        if output_dimension is None:
            return self.default_dim
        if output_dimension not in self.dims:
            raise ValueError(
                f"{self.name} does not support output_dimension={output_dimension}; "
                f"allowed: {list(self.dims)}"
            )
        return output_dimension

    def request_output_dimension(self, output_dimension: int | None) -> int | None:
        """What to send: None for fixed-size models (they reject the parameter) or when unset."""
        if output_dimension is None or len(self.dims) == 1:
            return None
        return output_dimension


def _flex(name: str, request_tokens: int, tpm: int) -> VoyageModel:
    return VoyageModel(name, 32_000, request_tokens, 1024, FLEXIBLE_DIMS, TIER1_RPM, tpm)


def _fixed(name: str, context: int, request_tokens: int, dim: int, tpm: int) -> VoyageModel:
    return VoyageModel(name, context, request_tokens, dim, (dim,), TIER1_RPM, tpm)


# Tier-1 TPM for voyage-4-large / voyage-4-lite is not published: assumed equal to their voyage-3 peers.
MODELS: dict[str, VoyageModel] = {
    m.name: m
    for m in (
        _flex("voyage-4-large", 120_000, 3_000_000),
        _flex("voyage-3-large", 120_000, 3_000_000),
        _flex("voyage-code-3", 120_000, 3_000_000),
        _flex("voyage-4", 320_000, 8_000_000),
        _flex("voyage-3.5", 320_000, 8_000_000),
        _flex("voyage-4-lite", 1_000_000, 16_000_000),
        _flex("voyage-3.5-lite", 1_000_000, 16_000_000),
        _fixed("voyage-finance-2", 32_000, 120_000, 1024, 3_000_000),
        _fixed("voyage-multilingual-2", 32_000, 120_000, 1024, 3_000_000),
        _fixed("voyage-law-2", 16_000, 120_000, 1024, 3_000_000),
        _fixed("voyage-code-2", 16_000, 120_000, 1536, 3_000_000),  # request limit undocumented
        _fixed("voyage-2", 4_000, 320_000, 1024, 3_000_000),
    )
}
DEFAULT_MODEL = "voyage-3.5"


def model_spec(model: str) -> VoyageModel:
    """Limits for ``model``; an unknown name gets the smallest documented limits (1024 dims, fixed)."""
    known = MODELS.get(model)
    if known is not None:
        return known
    return VoyageModel(model, 4_000, 120_000, 1024, (*FLEXIBLE_DIMS,), TIER1_RPM, 3_000_000)
