"""Voyage Batch API input: the three documented endpoints, request validation and input-file parsing.

https://docs.voyageai.com/docs/batch-inference: a batch targets ``/v1/embeddings`` (lines
``{"custom_id", "body": {"input": [...]}}``), ``/v1/contextualizedembeddings`` (``{"inputs": [[...]]}``) or
``/v1/rerank`` (``{"query", "documents"}``); ``request_params`` carries the model and options for every
line. Each endpoint is an :class:`Endpoint` so validation at create time and the output writer use the
same real-time code paths (:mod:`voyage_embed`, :mod:`voyage_context`, :mod:`voyage_rerank`): a request
answered in a batch is byte-identical to the same request answered in real time.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvest_defs.emulator.voyage_context import context_body, parse_context_params, prepare_inputs
from harvest_defs.emulator.voyage_embed import (
    VoyageRequestError,
    embeddings_body,
    parse_inputs,
    parse_params,
    prepare_texts,
)
from harvest_defs.emulator.voyage_rerank import parse_rerank_params, prepare_rerank, rerank_body

MAX_ERRORS_REPORTED = 100
METADATA_MAX_PAIRS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 16, 64, 512
# Rerankers the Batch API lists (api_contracts.md §3.2: "rerank-2.5(-lite)").
BATCH_RERANK_MODELS = frozenset({"rerank-2.5", "rerank-2.5-lite"})


@dataclass(frozen=True)
class Endpoint:
    """How one batch endpoint parses its params, sizes a line and answers it."""

    path: str
    parse: Callable[[dict[str, Any]], Any]  # request_params -> params (raises VoyageRequestError)
    size: Callable[[dict[str, Any], Any, int], tuple[int, int]]  # line body -> (inputs, tokens)
    answer: Callable[[dict[str, Any], Any, int], dict[str, Any]]  # line body -> response body


def _embed_params(request_params: dict[str, Any]) -> Any:
    params = parse_params(request_params)
    if not params.model.batch_api:
        raise VoyageRequestError(f"Model '{params.model.name}' is not available in the Batch API.")
    return params


def _embed_size(body: dict[str, Any], params: Any, max_inputs: int) -> tuple[int, int]:
    texts = parse_inputs(body.get("input"), max_inputs)
    return len(texts), prepare_texts(texts, params)[1]


def _embed_answer(body: dict[str, Any], params: Any, max_inputs: int) -> dict[str, Any]:
    prepared, tokens = prepare_texts(parse_inputs(body.get("input"), max_inputs), params)
    return embeddings_body(prepared, tokens, params)


def _rerank_params(request_params: dict[str, Any]) -> Any:
    params = parse_rerank_params(request_params)
    if params.model.name not in BATCH_RERANK_MODELS:
        raise VoyageRequestError(f"Model '{params.model.name}' is not available in the Batch API.")
    return params


def _rerank_size(body: dict[str, Any], params: Any, max_inputs: int) -> tuple[int, int]:
    _, documents, tokens = prepare_rerank(body, params)
    return len(documents), tokens


def _rerank_answer(body: dict[str, Any], params: Any, max_inputs: int) -> dict[str, Any]:
    return rerank_body(*prepare_rerank(body, params), params)


def _context_size(body: dict[str, Any], params: Any, max_inputs: int) -> tuple[int, int]:
    inputs, tokens = prepare_inputs(body)
    return sum(len(group) for group in inputs), tokens


def _context_answer(body: dict[str, Any], params: Any, max_inputs: int) -> dict[str, Any]:
    return context_body(*prepare_inputs(body), params)


ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in [
        Endpoint("/v1/embeddings", _embed_params, _embed_size, _embed_answer),
        Endpoint("/v1/contextualizedembeddings", parse_context_params, _context_size, _context_answer),
        Endpoint("/v1/rerank", _rerank_params, _rerank_size, _rerank_answer),
    ]
}


def model_name(params: Any) -> str:
    name: str = params.model.name
    return name


@dataclass
class Validation:
    """What parsing the input file found: per-line token counts, or the errors that fail the batch."""

    lines: int = 0
    inputs: int = 0
    tokens: array[int] = field(default_factory=lambda: array("q"))
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def error(self, code: str, line: int | None, message: str, param: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append({"code": code, "line": line, "message": message, "param": param})


def request_body(line: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``custom_id`` and ``body`` of one input line."""
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise VoyageRequestError("Each line needs a non-empty string 'custom_id'.")
    body = line.get("body")
    if not isinstance(body, dict):
        raise VoyageRequestError("Each line needs an object 'body' with the request's inputs.")
    return custom_id, body


def validate_input(
    path: Path, endpoint: Endpoint, params: Any, max_inputs: int, batch_max_inputs: int
) -> Validation:
    """Parse every line once (blocking; runs in a worker thread)."""
    result = Validation()
    seen: set[str] = set()
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            result.lines += 1
            try:
                line = json.loads(raw)
            except ValueError:
                result.error("invalid_json_line", number, "This line is not valid JSON.")
                continue
            if not isinstance(line, dict):
                result.error("invalid_json_line", number, "Each line must be a JSON object.")
                continue
            try:
                custom_id, body = request_body(line)
                inputs, tokens = endpoint.size(body, params, max_inputs)
            except VoyageRequestError as exc:
                result.error("invalid_request", number, str(exc), "body")
                continue
            if custom_id in seen:
                result.error(
                    "duplicate_custom_id", number, f"Duplicate custom_id '{custom_id}'.", "custom_id"
                )
                continue
            seen.add(custom_id)
            result.inputs += inputs
            result.tokens.append(tokens)
    if result.lines == 0:
        result.error("empty_file", None, "The input file contains no requests.")
    if result.inputs > batch_max_inputs:
        result.error(
            "too_many_inputs",
            None,
            f"The batch has {result.inputs} inputs; at most {batch_max_inputs} are allowed per batch.",
        )
    return result


def check_metadata(metadata: object) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX_PAIRS:
        raise VoyageRequestError(f"'metadata' must be an object of at most {METADATA_MAX_PAIRS} pairs.")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > METADATA_KEY_MAX or len(value) > METADATA_VALUE_MAX:
            raise VoyageRequestError(
                f"'metadata' keys must be at most {METADATA_KEY_MAX} characters and values strings of at "
                f"most {METADATA_VALUE_MAX} characters."
            )
    return dict(metadata)
