"""``python -m harvest_defs_tests.defs.run_partition CORPUS PARTITION KEY...``: one materialization in
its own process, so tests can start two at once against the same HARVEST_HOME (two DuckDB writers)."""

from __future__ import annotations

import sys

import dagster as dg

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection


def main(argv: list[str]) -> int:
    corpus, partition, *keys = argv
    from harvest_defs.defs.partitions import COLLECTIONS_NAME

    defs = build_defs(corpus)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(COLLECTIONS_NAME, [partition])
    result = materialize_selection(defs, instance, keys, partition, raise_on_error=False)
    print("SUCCESS" if result.success else "FAILURE")
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
