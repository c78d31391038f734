"""Validate Voyage embedding parameters and compute the response body (no HTTP here).

Shared by ``POST /v1/embeddings`` and the Batch API's output writer, so a text embedded in real time and
the same text embedded in a batch get bit-identical vectors and the same validation messages. Vectors
come from :func:`content.embed_text` whatever the ``input_type``: deterministic per text, as the RAG tests
assume. Voyage prepends a retrieval prompt to ``query``/``document`` inputs server-side, but the contract
does not say it is billed, so token counts are those of the text alone.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from harvest_defs.emulator.content import CHARS_PER_TOKEN, count_tokens, embed_text
from harvest_defs.emulator.voyage_models import INPUT_TYPES, ModelSpec, get_model, unknown_model_detail


class VoyageRequestError(ValueError):
    """A request the real API rejects with 400 ``{"detail": ...}``; ``str(exc)`` is the detail."""


@dataclass(frozen=True)
class EmbedParams:
    model: ModelSpec
    input_type: str | None
    truncation: bool
    dim: int
    dtype: str
    base64: bool


def output_dimension(body: dict[str, Any], model: ModelSpec) -> int:
    """The request's ``output_dimension`` (the model's default when absent), or the documented 400."""
    dim = body.get("output_dimension")
    dim = model.default_dim if dim is None else dim
    if isinstance(dim, bool) or not isinstance(dim, int) or dim not in model.dims:
        allowed = ", ".join(str(d) for d in model.dims)
        raise VoyageRequestError(
            f"Value '{dim}' supplied for argument 'output_dimension' is not valid for model "
            f"'{model.name}'. Accepted values are: {allowed}."
        )
    return dim


def parse_params(body: dict[str, Any]) -> EmbedParams:
    """The request's model options, checked against the model table (raises VoyageRequestError)."""
    model_name = body.get("model")
    if model_name is None:
        raise VoyageRequestError("Field 'model' is required.")
    model = get_model(model_name)
    if model is None:
        raise VoyageRequestError(unknown_model_detail(model_name))
    input_type = body.get("input_type")
    if input_type is not None and input_type not in INPUT_TYPES:
        raise VoyageRequestError(
            f"Value '{input_type}' supplied for argument 'input_type' is not valid. "
            "Accepted values are None, 'query' and 'document'."
        )
    truncation = body.get("truncation")
    if truncation is None:
        truncation = True
    if not isinstance(truncation, bool):
        raise VoyageRequestError("Argument 'truncation' must be a boolean.")
    dim = output_dimension(body, model)
    dtype = body.get("output_dtype") or "float"
    if dtype not in model.dtypes:
        allowed = ", ".join(sorted(model.dtypes))
        raise VoyageRequestError(
            f"Value '{dtype}' supplied for argument 'output_dtype' is not valid for model "
            f"'{model.name}'. Accepted values are: {allowed}."
        )
    encoding = body.get("encoding_format")
    if encoding not in (None, "base64"):
        raise VoyageRequestError(
            f"Value '{encoding}' supplied for argument 'encoding_format' is not valid. "
            "Accepted values are None and 'base64'."
        )
    return EmbedParams(model, input_type, truncation, dim, dtype, encoding == "base64")


def parse_inputs(raw: object, max_inputs: int) -> list[str]:
    """``input`` as a list of non-empty strings (a single string is one input)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise VoyageRequestError("Field 'input' must be a non-empty string or a non-empty list of strings.")
    if len(raw) > max_inputs:
        raise VoyageRequestError(
            f"The length of the input list must be at most {max_inputs}; it is {len(raw)}. "
            "Please lower the number of inputs in the request."
        )
    for i, text in enumerate(raw):
        if not isinstance(text, str):
            raise VoyageRequestError(f"Input at index {i} is not a string.")
        if not text:
            raise VoyageRequestError(f"Input at index {i} is an empty string; empty inputs are not allowed.")
    return raw


def prepare_texts(texts: list[str], params: EmbedParams) -> tuple[list[str], int]:
    """Apply context-length truncation and the per-request token limit; returns (texts, total tokens).

    With ``truncation`` an over-long input keeps its first ``context_tokens`` worth of text (the emulator's
    tokenizer is 4 characters per token); without it the request is rejected, as the real API does.
    """
    model = params.model
    limit_chars = model.context_tokens * CHARS_PER_TOKEN
    out: list[str] = []
    total = 0
    for i, text in enumerate(texts):
        tokens = count_tokens(text)
        if tokens > model.context_tokens:
            if not params.truncation:
                raise VoyageRequestError(
                    f"Request to model '{model.name}' failed. Input at index {i} has {tokens} tokens, "
                    f"which exceeds the context length of {model.context_tokens} tokens. "
                    "Set truncation=True or shorten the input."
                )
            text = text[:limit_chars]
            tokens = count_tokens(text)
        out.append(text)
        total += tokens
    if total > model.request_tokens:
        raise VoyageRequestError(
            f"Request to model '{model.name}' failed. The max allowed tokens per submitted batch is "
            f"{model.request_tokens}. Your batch has {total} tokens after truncation. "
            "Please lower the number of tokens in the batch."
        )
    return out, total


def quantize(vector: np.ndarray, dtype: str) -> np.ndarray:
    """Voyage's output dtypes: int8/uint8 scalar quantisation, (u)binary packed sign bits (dim/8 bytes).

    ``binary`` is ``ubinary`` shifted by -128 into int8 (the "offset binary" Voyage documents).
    """
    if dtype == "float":
        return vector.astype("<f4", copy=False)
    if dtype == "int8":
        return np.clip(np.rint(vector * 127.0), -128, 127).astype(np.int8)
    if dtype == "uint8":
        return np.clip(np.rint(vector * 127.0) + 128, 0, 255).astype(np.uint8)
    packed = np.packbits(vector > 0)
    if dtype == "ubinary":
        return packed
    return (packed.astype(np.int16) - 128).astype(np.int8)


def encode(vector: np.ndarray, as_base64: bool) -> str | list[float] | list[int]:
    """base64 of the raw little-endian bytes (what voyageai decodes with ``np.frombuffer``) or a JSON list."""
    if as_base64:
        return base64.b64encode(vector.tobytes()).decode("ascii")
    values: list[float] | list[int] = vector.tolist()
    return values


def embeddings_body(texts: list[str], tokens: int, params: EmbedParams) -> dict[str, Any]:
    """The ``/v1/embeddings`` response body for already prepared texts, sorted by index."""
    data = [
        {
            "object": "embedding",
            "embedding": encode(quantize(embed_text(text, params.dim), params.dtype), params.base64),
            "index": i,
        }
        for i, text in enumerate(texts)
    ]
    return {"object": "list", "data": data, "model": params.model.name, "usage": {"total_tokens": tokens}}


def estimate_tokens(body: object) -> int:
    """Tokens a request asks for, before validation: what TPM rate limiting charges (0 if unparseable)."""
    if not isinstance(body, dict):
        return 0
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return 0
    model = get_model(body.get("model"))
    cap = model.context_tokens if model is not None and body.get("truncation") is not False else None
    total = 0
    for text in raw:
        if isinstance(text, str):
            tokens = count_tokens(text)
            total += min(tokens, cap) if cap is not None else tokens
    return total
