"""The destination as the cache: texts already embedded there (same model/input_type/dimension) are not sent.

Why the destination and not a side store: it is the only place that proves the vector was *loaded*. A side
store written at extract time would claim vectors a failed load never wrote (dlt rolls back extract state
on failure; see reference/dlt_vectors_measured.md §3). Two cases:

- the id is there with the same text hash: nothing to do;
- another row has the same text hash (same settings): its vector is copied into a row for the new id —
  no API call, 0 tokens billed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from harvest_defs.harvest.voyage.packing import EmbedInput

logger = logging.getLogger("harvest_defs.harvest.voyage")


@dataclass
class CacheHits:
    present: set[str] = field(default_factory=set)  # embedding ids already loaded
    vectors: dict[str, Any] = field(default_factory=dict)  # text_hash -> vector (pa scalar list)


def _active_pipeline() -> Any:
    import dlt

    try:
        pipeline = dlt.current.pipeline()
    except Exception:
        return None
    # dlt.current.pipeline() creates a default pipeline when none is active; that one has no destination.
    return pipeline if getattr(pipeline, "destination", None) is not None else None


def lookup(
    inputs: Sequence[EmbedInput],
    table_name: str,
    model: str,
    input_type: str | None,
    dim: int,
) -> CacheHits:
    """What the active dlt pipeline's dataset already holds for these inputs (empty when unknown)."""
    hits = CacheHits()
    pipeline = _active_pipeline()
    if pipeline is None or not inputs:
        return hits
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    ids = pa.table(
        {"embedding_id": [i.embedding_id for i in inputs], "text_hash": [i.text_hash for i in inputs]}
    )
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(table_name)
            con = client.native_connection
            con.register("_harvest_wanted", ids)
            try:
                found = (
                    con.execute(
                        f"SELECT w.embedding_id, w.text_hash, e.embedding_id = w.embedding_id AS same_id, "
                        f"e.embedding FROM _harvest_wanted w JOIN {table} e ON e.text_hash = w.text_hash "
                        "WHERE e.model = ? AND e.dimensions = ? AND e.input_type IS NOT DISTINCT FROM ?",
                        [model, dim, input_type],
                    )
                    .arrow()
                    .read_all()
                )
            finally:
                con.unregister("_harvest_wanted")
    except DatabaseUndefinedRelation:
        return hits  # first run: the table does not exist yet
    except Exception as exc:  # e.g. a destination without a native DuckDB connection: no cache
        if "does not exist" in str(exc) or "Catalog Error" in str(exc):
            return hits
        logger.warning("embedding cache lookup failed (%s); embedding without it", type(exc).__name__)
        return hits
    found_ids = found.column("embedding_id").to_pylist()
    hashes = found.column("text_hash").to_pylist()
    same = found.column("same_id").to_pylist()
    vectors = found.column("embedding")
    for n, (eid, h, is_same) in enumerate(zip(found_ids, hashes, same, strict=True)):
        if is_same:
            hits.present.add(eid)
        elif h not in hits.vectors:
            hits.vectors[h] = vectors[n]
    return hits
