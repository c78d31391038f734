"""The ``voyage_embeddings`` Arrow schema and table builder (vectors as ``FixedSizeList<float32>[dim]``).

Arrow tables load into DuckDB through dlt ~20x faster than dict rows, and a fixed-size float32 list is
what becomes a native ``FLOAT[dim]`` column (with ``pipeline.vector_column_hint``) — never JSON text.
Every table the harvester yields has exactly this schema, whatever path (real-time, Batch API, cache)
produced it, so dlt never has to reconcile schemas.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("embedding_id", pa.string(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("embedding", pa.list_(pa.float32(), dim)),
            pa.field("model", pa.string()),
            pa.field("dimensions", pa.int64()),
            pa.field("total_tokens", pa.int64()),
            pa.field("created_at", pa.timestamp("us", tz="UTC")),
            pa.field("processing_time_ms", pa.float64()),
            pa.field("text_hash", pa.string()),
            pa.field("input_type", pa.string()),
        ]
    )


def decode_base64_vectors(encoded: Sequence[str], dim: int) -> np.ndarray:
    """``(n, dim)`` float32 from the API's base64 little-endian floats, without Python float lists."""
    raw = b"".join(base64.b64decode(s) for s in encoded)
    vectors = np.frombuffer(raw, dtype="<f4")
    if vectors.size != len(encoded) * dim:
        raise ValueError(f"expected {len(encoded)} vectors of {dim} floats, got {vectors.size} floats")
    return vectors.reshape(len(encoded), dim)


def vectors_to_arrow(vectors: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)


def embeddings_table(
    *,
    ids: Sequence[str],
    texts: Sequence[str],
    text_hashes: Sequence[str],
    vectors: np.ndarray | pa.FixedSizeListArray,
    tokens: Sequence[int],
    model: str,
    dim: int,
    input_type: str | None,
    processing_time_ms: Sequence[float] | float | None,
    created_at: datetime | None = None,
) -> pa.Table:
    n = len(ids)
    when = created_at or datetime.now(UTC)
    ms: Any = processing_time_ms if isinstance(processing_time_ms, Sequence) else [processing_time_ms] * n
    embedding = vectors if isinstance(vectors, pa.Array) else vectors_to_arrow(vectors, dim)
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(texts, pa.string()),
            embedding,
            pa.array([model] * n, pa.string()),
            pa.array([dim] * n, pa.int64()),
            pa.array(tokens, pa.int64()),
            pa.array([when] * n, pa.timestamp("us", tz="UTC")),
            pa.array(ms, pa.float64()),
            pa.array(text_hashes, pa.string()),
            pa.array([input_type] * n, pa.string()),
        ],
        schema=embedding_schema(dim),
    )
