"""Asset checks: the guarantees a user would otherwise verify by hand after each harvest.

They read the warehouse through its seam (``store.warehouse()``: the DuckDB file read-only under the
shared lock, or Postgres) and are cheap aggregate queries, so they run after every materialization.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from harvest_defs.defs.assets.claude import SUMMARIES_KEY
from harvest_defs.defs.assets.rag import RAG_INDEX_KEY
from harvest_defs.defs.assets.voyage import EMBEDDINGS_KEY
from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource, VoyageResource
from harvest_defs.defs.warehouse import CLAUDE_TABLE, VOYAGE_TABLE, query_rows

# Output dimension of Voyage models when ``output_dimension`` is not set.
DEFAULT_VOYAGE_DIMS = {"voyage-code-2": 1536}
DEFAULT_DIMS = 1024


def expected_dimension(voyage: VoyageResource) -> int:
    return voyage.dims or DEFAULT_VOYAGE_DIMS.get(voyage.model, DEFAULT_DIMS)


def _one(store: HarvestStoreResource, sql: str, needs: str, params: Sequence[Any] = ()) -> dict | None:
    rows = query_rows(store, store.warehouse_path, sql, params, needs=needs)
    return rows[0] if rows else None


@dg.asset_check(asset=SUMMARIES_KEY, name="failed_request_ratio", blocking=False)
def failed_request_ratio(store: HarvestStoreResource, anthropic: AnthropicResource) -> dg.AssetCheckResult:
    """Fails when more than ``AnthropicResource.max_failed_ratio`` of the collected requests failed."""
    row = _one(
        store,
        f"SELECT count(*) AS total, count(*) FILTER (WHERE NOT success) AS failed FROM {CLAUDE_TABLE}",
        CLAUDE_TABLE,
    )
    total, failed = (row["total"], row["failed"]) if row else (0, 0)
    ratio = failed / total if total else 0.0
    return dg.AssetCheckResult(
        passed=ratio <= anthropic.max_failed_ratio,
        metadata={
            "failed": failed,
            "total": total,
            "ratio": round(ratio, 4),
            "threshold": anthropic.max_failed_ratio,
        },
    )


@dg.asset_check(asset=EMBEDDINGS_KEY, name="embedding_dimensions", blocking=True)
def embedding_dimensions(store: HarvestStoreResource, voyage: VoyageResource) -> dg.AssetCheckResult:
    """Every stored vector has the configured model's dimension (a wrong one would poison the index)."""
    expected = expected_dimension(voyage)
    length = store.warehouse().vector_length("embedding")
    row = _one(
        store,
        f"SELECT count(*) AS total, count(*) FILTER (WHERE {length} <> {expected}) AS wrong, "
        f"min({length}) AS min_dim, max({length}) AS max_dim "
        f"FROM {VOYAGE_TABLE} WHERE model = ?",
        VOYAGE_TABLE,
        [voyage.model],
    )
    wrong = row["wrong"] if row else 0
    return dg.AssetCheckResult(
        passed=wrong == 0,
        metadata={
            "expected_dimension": expected,
            "vectors": row["total"] if row else 0,
            "wrong_dimension": wrong,
            "min_dim": row["min_dim"] if row else None,
            "max_dim": row["max_dim"] if row else None,
        },
    )


@dg.asset_check(asset=EMBEDDINGS_KEY, name="every_summary_embedded", blocking=False)
def every_summary_embedded(store: HarvestStoreResource) -> dg.AssetCheckResult:
    """Every successful summary has an embedding (a gap means a partition still needs embedding)."""
    row = _one(
        store,
        f"SELECT count(*) AS missing, (array_agg(custom_id ORDER BY custom_id))[1:10] AS sample "
        f"FROM {CLAUDE_TABLE} c "
        f"WHERE c.success AND NOT EXISTS (SELECT 1 FROM {VOYAGE_TABLE} e WHERE e.embedding_id = c.custom_id)",
        VOYAGE_TABLE,
    )
    missing = row["missing"] if row else 0
    return dg.AssetCheckResult(
        passed=missing == 0,
        metadata={
            "summaries_without_embedding": missing,
            "sample": dg.MetadataValue.json(row["sample"] if row else []),
        },
    )


@dg.asset_check(asset=RAG_INDEX_KEY, name="index_fresh", blocking=False)
def index_fresh(store: HarvestStoreResource) -> dg.AssetCheckResult:
    """The index holds every embedding in the warehouse: nothing loaded since the last build is missing."""
    from harvest_defs.defs.assets.rag_backends import indexed_ids

    embedded = query_rows(
        store, store.warehouse_path, f"SELECT embedding_id FROM {VOYAGE_TABLE}", needs=VOYAGE_TABLE
    )
    in_index = indexed_ids(store)
    missing = sorted({r["embedding_id"] for r in embedded or []} - set(in_index))
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={
            "indexed": len(in_index),
            "missing_from_index": len(missing),
            "sample": dg.MetadataValue.json(missing[:10]),
        },
    )


ALL_CHECKS = [failed_request_ratio, embedding_dimensions, every_summary_embedded, index_fresh]
