"""One row per ``custom_id`` per load: what lets dlt's merge skip its own dedup pass.

Kept free of heavy imports (pyarrow is imported on first use) because the Dagster code location builds
its collect source from it at load time, and loading must stay cheap (``benchmarks/load_time.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlt.common.schema.typing import TDeleteInsertStrategyDict

if TYPE_CHECKING:
    import pyarrow as pa

# ``deduplicated``: every load package this resource writes holds each custom_id once (see
# :class:`UniqueRows`), so dlt may skip its ``ROW_NUMBER() OVER (PARTITION BY custom_id)`` pass over the
# staging table. Measured on 100k rows (benchmarks/claude_ingest.py, medians of 7 interleaved runs):
# 2.35 s -> 2.05 s per ``pipeline.run``. Delete-insert (not upsert) because a re-collected row must
# replace the old one and upsert measured no faster here.
MERGE_DISPOSITION: TDeleteInsertStrategyDict = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "deduplicated": True,
}


class UniqueRows:
    """Drops rows whose ``key`` (``custom_id``) was already yielded in this load: the promise behind
    ``deduplicated``.

    The first occurrence wins, so callers yield the freshest rows first (new batches before old ones).
    O(n): one set of ids; a table with no repeat (the normal case) passes through unchanged.
    """

    def __init__(self, key: str = "custom_id") -> None:
        self._seen: set[str] = set()
        self.key = key
        self.dropped = 0

    def __call__(self, table: pa.Table) -> pa.Table:
        ids = table.column(self.key).to_pylist()
        seen = self._seen
        if seen.isdisjoint(ids):
            before = len(seen)
            seen.update(ids)
            if len(seen) - before == len(ids):
                return table
            seen.difference_update(ids)  # repeats inside the table itself: take the slow path
        keep: list[bool] = []
        for custom_id in ids:
            fresh = custom_id not in seen
            keep.append(fresh)
            seen.add(custom_id)
        self.dropped += keep.count(False)
        import pyarrow as pa

        return table.filter(pa.array(keep, type=pa.bool_()))


class DiskUniqueRows(UniqueRows):
    """:class:`UniqueRows` whose memory of yielded ids is a :class:`~harvest_defs.harvest.streaming.SeenIds`
    file: the same promise for a stream of millions of rows (a Python set of 1M ids is ~100 MB).

    Only repeats inside one table use memory (a set the size of that table).
    """

    def __init__(self, seen: Any, key: str = "custom_id") -> None:
        super().__init__(key)
        self._disk = seen

    def __call__(self, table: pa.Table) -> pa.Table:
        ids = table.column(self.key).to_pylist()
        earlier = self._disk.check_and_add(ids)
        if not earlier and len(set(ids)) == len(ids):
            return table
        keep: list[bool] = []
        local: set[str] = set()
        for custom_id in ids:
            fresh = custom_id not in earlier and custom_id not in local
            keep.append(fresh)
            local.add(custom_id)
        self.dropped += keep.count(False)
        import pyarrow as pa

        return table.filter(pa.array(keep, type=pa.bool_()))


def unique_rows(
    tables: Iterable[pa.Table], key: str, scratch_dir: Path | str | None = None
) -> Iterator[pa.Table]:
    """``tables`` with every row whose ``key`` an earlier row had dropped (first wins; empty tables skipped).

    The ids seen are a :class:`~harvest_defs.harvest.streaming.SeenIds` file in ``scratch_dir`` (deleted
    when the stream ends): bounded memory at millions of rows. A resource yielding only these tables may
    declare :data:`MERGE_DISPOSITION`.
    """
    from harvest_defs.harvest.streaming import SeenIds

    with SeenIds(scratch_dir) as seen:
        unique = DiskUniqueRows(seen, key)
        for table in tables:
            if table.num_rows:
                table = unique(table)
                if table.num_rows:
                    yield table
