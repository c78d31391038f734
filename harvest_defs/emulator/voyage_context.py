"""Voyage ``POST /v1/contextualizedembeddings`` (voyage-context-3): one vector per chunk, in context.

Reference: https://docs.voyageai.com/docs/contextualized-chunk-embeddings and
https://docs.voyageai.com/reference/contextualized-chunk-embeddings-api. Request ``{inputs: [[chunk, ...],
...], model, input_type?, output_dimension? (256/512/1024*/2048), output_dtype?, encoding_format?}``;
response ``{"object": "list", "data": [{"object": "list", "data": [{"object": "embedding", "embedding",
"index"}], "index"}], "model", "usage": {"total_tokens"}}``. Documented limits: at most 1,000 inputs,
16,000 chunks and 120,000 tokens per request, and 32,000 tokens per inner list. There is no
``truncation``: an over-limit request is a 400. ``enable_auto_chunking`` (one string per document, split
server-side into ``chunk_size``-token chunks with ``chunk_overlap``) is accepted; the emulator splits by its
4-characters-per-token rule with a default of 512 tokens (a judgement call: the default is not documented).

Vectors: each chunk's feature-hashed bag of words plus a quarter of its whole document's, normalised —
lexical like :func:`content.embed_text`, and a chunk's vector carries its document's context (the point
of the model), deterministically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harvest_defs.emulator.content import CHARS_PER_TOKEN, count_tokens, embed_text
from harvest_defs.emulator.voyage_embed import (
    EmbedParams,
    VoyageRequestError,
    encode,
    output_dimension,
    quantize,
)
from harvest_defs.emulator.voyage_models import ALL_DTYPES as CONTEXT_DTYPES
from harvest_defs.emulator.voyage_models import FLEXIBLE_DIMS, INPUT_TYPES, ModelSpec

CONTEXT_MODELS: dict[str, ModelSpec] = {
    "voyage-context-3": ModelSpec(
        "voyage-context-3", 32_000, 120_000, FLEXIBLE_DIMS, 1024, CONTEXT_DTYPES, True
    )
}
MAX_INPUTS, MAX_CHUNKS = 1000, 16_000
DEFAULT_CHUNK_TOKENS = 512
CONTEXT_WEIGHT = 0.25


def parse_context_params(body: dict[str, Any]) -> EmbedParams:
    """Model options (also the Batch API's ``request_params``); raises VoyageRequestError."""
    name = body.get("model")
    if name is None:
        raise VoyageRequestError("Field 'model' is required.")
    model = CONTEXT_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        supported = ", ".join(CONTEXT_MODELS)
        raise VoyageRequestError(
            f"Model {name} is not supported. Supported contextualized embedding models are: {supported}."
        )
    input_type = body.get("input_type")
    if input_type is not None and input_type not in INPUT_TYPES:
        raise VoyageRequestError(
            f"Value '{input_type}' supplied for argument 'input_type' is not valid. "
            "Accepted values are None, 'query' and 'document'."
        )
    dim = output_dimension(body, model)
    dtype = body.get("output_dtype") or "float"
    if dtype not in model.dtypes:
        raise VoyageRequestError(f"Value '{dtype}' supplied for argument 'output_dtype' is not valid.")
    encoding = body.get("encoding_format")
    if encoding not in (None, "base64"):
        raise VoyageRequestError(
            f"Value '{encoding}' supplied for argument 'encoding_format' is not valid. "
            "Accepted values are None and 'base64'."
        )
    return EmbedParams(model, input_type, False, dim, dtype, encoding == "base64")


def _auto_chunk(text: str, size: int, overlap: int) -> list[str]:
    width, step = size * CHARS_PER_TOKEN, max(1, (size - overlap) * CHARS_PER_TOKEN)
    return [text[i : i + width] for i in range(0, max(1, len(text) - overlap * CHARS_PER_TOKEN), step)]


def prepare_inputs(body: dict[str, Any]) -> tuple[list[list[str]], int]:
    """The validated chunk lists and total tokens; raises VoyageRequestError."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise VoyageRequestError("Field 'inputs' must be a non-empty list of lists of strings.")
    if len(inputs) > MAX_INPUTS:
        raise VoyageRequestError(f"The number of inputs must be at most {MAX_INPUTS}; it is {len(inputs)}.")
    auto = body.get("enable_auto_chunking") is True
    size = body.get("chunk_size") or DEFAULT_CHUNK_TOKENS
    overlap = body.get("chunk_overlap") or 0
    if auto and (not isinstance(size, int) or not isinstance(overlap, int) or not 0 <= overlap < size):
        raise VoyageRequestError("'chunk_size' must be a positive integer above 'chunk_overlap' (>= 0).")
    out: list[list[str]] = []
    chunks = total = 0
    for i, group in enumerate(inputs):
        if not isinstance(group, list) or not group or not all(isinstance(c, str) and c for c in group):
            raise VoyageRequestError(f"Input at index {i} must be a non-empty list of non-empty strings.")
        if auto:
            group = [piece for text in group for piece in _auto_chunk(text, size, overlap)]
        tokens = sum(count_tokens(c) for c in group)
        if tokens > 32_000:
            raise VoyageRequestError(
                f"Input at index {i} has {tokens} tokens; the context length of voyage-context-3 is 32000."
            )
        out.append(group)
        chunks += len(group)
        total += tokens
    if chunks > MAX_CHUNKS:
        raise VoyageRequestError(f"The total number of chunks must be at most {MAX_CHUNKS}; it is {chunks}.")
    if total > 120_000:
        raise VoyageRequestError(f"The total number of tokens must be at most 120000; it is {total}.")
    return out, total


def context_body(inputs: list[list[str]], tokens: int, params: EmbedParams) -> dict[str, Any]:
    data = []
    for i, group in enumerate(inputs):
        document = embed_text(" ".join(group), params.dim)
        rows = []
        for j, chunk in enumerate(group):
            vector = embed_text(chunk, params.dim) + CONTEXT_WEIGHT * document
            vector = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
            rows.append(
                {
                    "object": "embedding",
                    "embedding": encode(quantize(vector, params.dtype), params.base64),
                    "index": j,
                }
            )
        data.append({"object": "list", "data": rows, "index": i})
    return {"object": "list", "data": data, "model": params.model.name, "usage": {"total_tokens": tokens}}


def contextualized(body: dict[str, Any]) -> dict[str, Any]:
    """Validate and answer one contextualized-embeddings request body (raises VoyageRequestError)."""
    params = parse_context_params(body)
    inputs, tokens = prepare_inputs(body)
    return context_body(inputs, tokens, params)
