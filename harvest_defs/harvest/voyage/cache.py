"""The destination as the cache: texts already embedded there (same model/input_type/dimension) are not sent.

Why the destination and not a side store: it is the only place that proves the vector was *loaded*. A side
store written at extract time would claim vectors a failed load never wrote (dlt rolls back extract state
on failure; see reference/dlt_vectors_measured.md §3). Two cases:

- the id is there with the same text hash: nothing to do;
- another row has the same text hash (same settings): its vector is copied into a row for the new id —
  no API call, 0 tokens billed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from harvest_defs.harvest.destination import run_sql_client
from harvest_defs.harvest.voyage.packing import EmbedInput

logger = logging.getLogger("harvest_defs.harvest.voyage")
# Text hashes per query on a server destination (a bounded ``= ANY(%s)`` parameter).
SERVER_CHUNK = 5_000


@dataclass
class CacheHits:
    present: set[str] = field(default_factory=set)  # embedding ids already loaded
    vectors: dict[str, Any] = field(default_factory=dict)  # text_hash -> vector (pa scalar list)


def _is_duckdb(client: Any) -> bool:
    return type(client.native_connection).__module__.startswith("duckdb")


def _found_duckdb(
    client: Any, table: str, inputs: Sequence[EmbedInput], model: str, input_type: str | None, dim: int
) -> pa.Table:
    """One join against the wanted ids registered as an Arrow table (vectors stay Arrow: no Python lists)."""
    ids = pa.table(
        {"embedding_id": [i.embedding_id for i in inputs], "text_hash": [i.text_hash for i in inputs]}
    )
    con = client.native_connection
    con.register("_harvest_wanted", ids)
    try:
        return (
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


def _found_server(
    client: Any, table: str, inputs: Sequence[EmbedInput], model: str, input_type: str | None, dim: int
) -> pa.Table:
    """The same rows from a server destination (Postgres: ``embedding`` is a jsonb list): the stored rows
    whose text hash is wanted, fetched ``SERVER_CHUNK`` hashes a query, joined to the wanted ids here."""
    wanted: dict[str, list[str]] = {}
    for item in inputs:
        wanted.setdefault(item.text_hash, []).append(item.embedding_id)
    hashes = list(wanted)
    out_ids: list[str] = []
    out_hashes: list[str] = []
    same: list[bool] = []
    vectors: list[list[float]] = []
    for start in range(0, len(hashes), SERVER_CHUNK):
        rows = client.execute_sql(
            f"SELECT embedding_id, text_hash, embedding FROM {table} WHERE text_hash = ANY(%s) "
            "AND model = %s AND dimensions = %s AND input_type IS NOT DISTINCT FROM %s",
            hashes[start : start + SERVER_CHUNK],
            model,
            dim,
            input_type,
        )
        for stored_id, text_hash, embedding in rows or []:
            vector = json.loads(embedding) if isinstance(embedding, str) else embedding
            for embedding_id in wanted.get(text_hash, []):
                out_ids.append(embedding_id)
                out_hashes.append(text_hash)
                same.append(embedding_id == stored_id)
                vectors.append(vector)
    return pa.table(
        {
            "embedding_id": out_ids,
            "text_hash": out_hashes,
            "same_id": same,
            "embedding": pa.array(vectors, pa.list_(pa.float32())),
        }
    )


class Destination:
    """The run's destination for lookups: one SQL client per run, opened per lookup.

    Make it before the first window is read (``harvest/destination.py`` says why: a client made per
    window kept every window's inputs alive until the extract ended).
    """

    def __init__(self) -> None:
        self.client: Any = run_sql_client()

    def found(
        self, inputs: Sequence[EmbedInput], table_name: str, model: str, input_type: str | None, dim: int
    ) -> pa.Table | None:
        """The destination's rows for these inputs' text hashes; None when there is no table (yet)."""
        if self.client is None or not inputs:
            return None
        from dlt.destinations.exceptions import DatabaseUndefinedRelation

        try:
            with self.client as client:
                table = client.make_qualified_table_name(table_name)
                if _is_duckdb(client):
                    return _found_duckdb(client, table, inputs, model, input_type, dim)
                return _found_server(client, table, inputs, model, input_type, dim)
        except DatabaseUndefinedRelation:
            return None  # first run: the table does not exist yet
        except Exception as exc:
            if "does not exist" in str(exc) or "Catalog Error" in str(exc):
                return None
            logger.warning("embedding cache lookup failed (%s); embedding without it", type(exc).__name__)
            return None


def lookup(
    inputs: Sequence[EmbedInput],
    table_name: str,
    model: str,
    input_type: str | None,
    dim: int,
    destination: Destination | None = None,
) -> CacheHits:
    """What the active dlt pipeline's dataset already holds for these inputs (empty when unknown).

    ``destination``: the run's :class:`Destination` (a loop over windows passes one; a single call may
    leave it out).
    """
    hits = CacheHits()
    if not inputs:
        return hits
    found = (destination or Destination()).found(inputs, table_name, model, input_type, dim)
    if found is None:
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
