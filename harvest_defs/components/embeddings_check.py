"""``<name>_dimensions``: every vector of a ``VoyageEmbeddings`` table has the instance's dimension.

A blocking check, like the chain's ``embedding_dimensions``: a wrong-sized vector would poison the index
built downstream. Failure rows (``success = false``, no vector) are counted in the metadata, not failed on.
"""

import dagster as dg

from harvest_defs.components.embeddings_spec import EmbeddingsSpec
from harvest_defs.defs.resources import HarvestStoreResource


def build_dimensions_check(spec: EmbeddingsSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(spec.name), name=f"{spec.name}_dimensions", blocking=True)
    def dimensions(store: HarvestStoreResource) -> dg.AssetCheckResult:
        from harvest_defs.defs.warehouse import query_rows

        rows = query_rows(
            store,
            store.warehouse_path,
            "SELECT count(*) FILTER (WHERE success) AS embedded, "
            "count(*) FILTER (WHERE NOT success) AS failed, "
            f"count(*) FILTER (WHERE success AND len(embedding::FLOAT[]) <> {spec.dims}) AS wrong "
            f"FROM {spec.qualified_table}",
            needs=spec.qualified_table,
        )
        row = rows[0] if rows else {"embedded": 0, "failed": 0, "wrong": 0}
        return dg.AssetCheckResult(
            passed=row["wrong"] == 0,
            metadata={"expected_dimension": spec.dims, **{k: int(v or 0) for k, v in row.items()}},
        )

    return dimensions
