"""Voyage embedding models the emulator serves, with their documented limits.

One table drives every check (context length, tokens per request, allowed ``output_dimension`` values,
quantised dtypes, Batch API support), so the real-time route and the Batch API reject the same requests
with the same messages. Numbers are from api_contracts.md §2.3 (docs.voyageai.com/docs/embeddings);
``voyage-3`` / ``voyage-3-lite`` are older models the seed guide still uses (figures from the older docs),
and ``voyage-code-2``'s per-request token limit is undocumented (120K assumed).
"""

from __future__ import annotations

from dataclasses import dataclass

FLEXIBLE_DIMS: tuple[int, ...] = (256, 512, 1024, 2048)
FLOAT_ONLY: frozenset[str] = frozenset({"float"})
ALL_DTYPES: frozenset[str] = frozenset({"float", "int8", "uint8", "binary", "ubinary"})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    context_tokens: int
    request_tokens: int
    dims: tuple[int, ...]
    default_dim: int
    dtypes: frozenset[str]
    batch_api: bool


def _spec(
    name: str, context: int, per_request: int, dims: tuple[int, ...], default: int, batch: bool
) -> ModelSpec:
    dtypes = ALL_DTYPES if len(dims) > 1 else FLOAT_ONLY
    return ModelSpec(name, context, per_request, dims, default, dtypes, batch)


_K = 1000
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        _spec("voyage-4-large", 32 * _K, 120 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-3-large", 32 * _K, 120 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-code-3", 32 * _K, 120 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-4", 32 * _K, 320 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-3.5", 32 * _K, 320 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-4-lite", 32 * _K, 1000 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-3.5-lite", 32 * _K, 1000 * _K, FLEXIBLE_DIMS, 1024, True),
        _spec("voyage-finance-2", 32 * _K, 120 * _K, (1024,), 1024, False),
        _spec("voyage-multilingual-2", 32 * _K, 120 * _K, (1024,), 1024, False),
        _spec("voyage-law-2", 16 * _K, 120 * _K, (1024,), 1024, False),
        _spec("voyage-code-2", 16 * _K, 120 * _K, (1536,), 1536, True),
        _spec("voyage-2", 4 * _K, 320 * _K, (1024,), 1024, False),
        _spec("voyage-3", 32 * _K, 320 * _K, (1024,), 1024, False),
        _spec("voyage-3-lite", 32 * _K, 1000 * _K, (512,), 512, False),
    ]
}

INPUT_TYPES: frozenset[str] = frozenset({"query", "document"})


def get_model(name: object) -> ModelSpec | None:
    return MODELS.get(name) if isinstance(name, str) else None


def unknown_model_detail(name: object) -> str:
    supported = ", ".join(sorted(MODELS))
    return f"Model {name} is not supported. Supported models are: {supported}."
