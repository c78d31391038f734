"""Where one graph query's time goes on a built index: usearch vs the DuckDB re-rank, cold vs warm.

In one fresh process (``open_index``, as ``harvest ask`` opens it), each near query is timed in two phases,
``ann.candidates`` (the memory-mapped usearch graph) and ``ann.rerank`` (the DuckDB statement), with the
process's minor/major page faults around each; then the same queries again (a warm reader: the buffer
pool already holds their blocks). What this showed at 200k x 1024 (README, issue-16 paragraph): pass 1's
re-rank was dominated by ~1,000 minor faults a query (each candidate loads its 256 KB block into DuckDB's
buffer pool), pass 2 had none.

    uv run python benchmarks/query_phases.py /tmp/ann1m/index_build_*/rag.duckdb --queries 100
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query_latency import query_sets

from harvest_defs.rag import ann
from harvest_defs.rag.index import index_meta, open_index
from harvest_defs.rag.search import check_query_vector


def _faults() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("index", type=Path)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    rows = int(index_meta(args.index)["rows"])
    con = open_index(args.index)
    graph = ann.graph_for(con)
    assert graph is not None, "the index has no usearch graph"
    vectors = query_sets(rows, args.queries)["near"]
    report: dict[str, dict[str, float]] = {}
    for name in ("pass_1_fresh", "pass_2_warm"):
        names = ("usearch_ms", "rerank_ms", "usearch_minflt", "rerank_minflt", "majflt")
        phases: dict[str, list[float]] = {k: [] for k in names}
        for vector in vectors:
            vector = check_query_vector(con, vector)
            f0, t0 = _faults(), time.perf_counter()
            keys = ann.candidates(graph, vector, 10)
            f1, t1 = _faults(), time.perf_counter()
            ann.rerank(con, vector, keys, 10)
            f2, t2 = _faults(), time.perf_counter()
            phases["usearch_ms"].append((t1 - t0) * 1000)
            phases["rerank_ms"].append((t2 - t1) * 1000)
            phases["usearch_minflt"].append(f1[0] - f0[0])
            phases["rerank_minflt"].append(f2[0] - f1[0])
            phases["majflt"].append(f2[1] - f0[1])
        report[name] = {f"{k}_p50": round(float(np.percentile(v, 50)), 3) for k, v in phases.items()}
    con.close()
    print(json.dumps({"rows": rows, "queries": args.queries, **report}, indent=2))


if __name__ == "__main__":
    main()
