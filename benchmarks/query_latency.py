"""Top-10 vector query latency on an already-built index: main's query path (before) vs this tree's (after).

Both paths run on the same ``rag.duckdb`` + usearch sidecar (e.g. the 1M file ``index_build.py --keep``
leaves behind), in alternating fresh child processes (before, after, before, after, ...: a noisy, shared
machine slows both alike, so the ratio is what counts), each warmed with a few queries and then timing
``--queries`` queries near the data (the data's topic centres with fresh noise, as ``index_build.py``
draws them) and as many far from it, then the near ones again ("near_again": a warm, long-lived reader;
the first pass is what a fresh ``harvest ask`` process sees). recall@10 of both is measured against
``exact_search`` (a brute-force float32 scan over the same table) for the first ``--recall-queries`` of
each set, computed once here.

"before" is a frozen copy of main's path at ``caee2b1`` (``_before_search`` below: metadata read and
``SET VARIABLE`` per query, ``max(2k, 20)`` graph candidates, one re-rank statement fetching ``text`` for
every candidate); "after" is ``harvest_defs.rag.search.vector_search``.

    uv run python benchmarks/query_latency.py /tmp/ann1m/index_build_*/rag.duckdb \
        --out benchmarks/results/query_latency_1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from vector_search import ClusteredVectors  # noqa: E402

K = 10
WARMUP = 5


def query_sets(rows: int, queries: int) -> dict[str, np.ndarray]:
    """The near and far query vectors of ``index_build.py`` for an index of ``rows`` rows."""
    near = ClusteredVectors(1024, 1000, 0.6, seed=rows)
    near.rng = np.random.default_rng(rows + 2)
    return {
        "near": near.sample(queries),
        "far": ClusteredVectors(1024, 1000, 0.6, seed=rows + 1).sample(queries),
    }


def _before_search(con: Any, vector: np.ndarray, k: int) -> list[str]:
    """main's unfiltered graph query at caee2b1, verbatim but for the Hit objects (chunk ids suffice)."""
    import pyarrow as pa

    from harvest_defs.rag import ann
    from harvest_defs.rag.schema import CHUNKS_TABLE, HNSW_EF_SEARCH, read_meta

    read_meta(con).get("dim")
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    query_table = pa.table({"q": pa.FixedSizeListArray.from_arrays(pa.array(vector), vector.shape[0])})
    con.register("_rag_query_vector", query_table)
    try:
        con.execute("SET VARIABLE qv = (SELECT q FROM _rag_query_vector)")
    finally:
        con.unregister("_rag_query_vector")
    graph = ann.graph_for(con)
    count = max(2 * k, 20)
    if graph.expansion_search < max(HNSW_EF_SEARCH, count):
        graph.expansion_search = max(HNSW_EF_SEARCH, count)
    keys = [int(key) for key in graph.search(np.asarray(vector, dtype=np.float32), count).keys]
    listed = ", ".join(str(int(key)) for key in keys) or "NULL"
    rows = con.execute(
        "SELECT chunk_id, document_id, text, "
        "array_cosine_distance(embedding, getvariable('qv')) AS distance "
        f"FROM {CHUNKS_TABLE} WHERE ann_key IN ({listed}) "
        f"ORDER BY distance, chunk_id LIMIT {int(k)}"
    ).fetchall()
    return [r[0] for r in rows]


def _after_search(con: Any, vector: np.ndarray, k: int) -> list[str]:
    from harvest_defs.rag.search import vector_search

    return [hit.chunk_id for hit in vector_search(con, vector, k)]


def child(path: Path, which: str, rows: int, queries: int) -> dict[str, Any]:
    """One timed pass of one path over both query sets (runs in a fresh process). "before" opens the index
    as main's ``open_index`` did (DuckDB's default threads), "after" with this tree's ``open_index``."""
    from harvest_defs.rag.extensions import connect
    from harvest_defs.rag.index import open_index

    search = _before_search if which == "before" else _after_search
    con = connect(path, read_only=True) if which == "before" else open_index(path)
    out: dict[str, Any] = {}
    sets = query_sets(rows, queries)
    # The near queries once more at the end: a long-lived reader's steady state (its buffer pool and the
    # graph's pages already hold what they touch), against the first pass's fresh process.
    for name, vectors in [*sets.items(), ("near_again", sets["near"])]:
        t0 = time.perf_counter()
        search(con, vectors[0], K)
        first_ms = (time.perf_counter() - t0) * 1000
        for vector in vectors[1:WARMUP]:
            search(con, vector, K)
        latencies, ids = [], []
        for vector in vectors:
            t0 = time.perf_counter()
            ids.append(search(con, vector, K))
            latencies.append((time.perf_counter() - t0) * 1000)
        out[name] = {"first_query_ms": round(first_ms, 2), "latencies_ms": latencies, "ids": ids}
    con.close()
    return out


def exact_ids(path: Path, rows: int, queries: int, recall_queries: int) -> dict[str, list[set[str]]]:
    """Ground truth: the exact top-10 of the first ``recall_queries`` of each set."""
    from harvest_defs.rag.index import open_index
    from harvest_defs.rag.search import exact_search

    con = open_index(path)
    try:
        return {
            name: [{h.chunk_id for h in exact_search(con, v, K)} for v in vectors[:recall_queries]]
            for name, vectors in query_sets(rows, queries).items()
        }
    finally:
        con.close()


def summarise(passes: list[dict[str, Any]], exact: dict[str, list[set[str]]]) -> dict[str, Any]:
    """p50/p95 over every timed query of every pass, per-pass p50s, and recall@10 against ``exact``."""
    out: dict[str, Any] = {}
    for name in passes[0]:
        truth = exact[name.removesuffix("_again")]
        latencies = [ms for p in passes for ms in p[name]["latencies_ms"]]
        ids = passes[0][name]["ids"]
        recall = [len(t & set(got)) / K for t, got in zip(truth, ids, strict=False)]
        out[name] = {
            "p50_ms": round(float(np.percentile(latencies, 50)), 3),
            "p95_ms": round(float(np.percentile(latencies, 95)), 3),
            "pass_p50_ms": [round(float(np.percentile(p[name]["latencies_ms"], 50)), 3) for p in passes],
            "first_query_ms": [p[name]["first_query_ms"] for p in passes],
            "recall_at_10": round(float(np.mean(recall)), 4),
            "timed_queries": len(latencies),
            "recall_queries": len(recall),
        }
    return out


def loadavg() -> str:
    """The 1/5/15-minute load averages (what ``uptime`` prints): this machine is shared."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("index", type=Path, help="a built rag.duckdb (its usearch sidecar beside it)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per set and pass")
    parser.add_argument("--rounds", type=int, default=3, help="before/after pass pairs")
    parser.add_argument("--recall-queries", type=int, default=20)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "query_latency.json")
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "ROWS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, rows, out = args.child
        Path(out).write_text(json.dumps(child(args.index, which, int(rows), args.queries)))
        return

    from harvest_defs.rag.index import index_meta

    rows = int(index_meta(args.index)["rows"])
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    load = {"start": loadavg()}
    passes: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    scratch = args.out.with_suffix(".pass.json")
    for round_ in range(args.rounds):
        order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
        for which in order:
            cmd = [sys.executable, __file__, str(args.index), "--queries", str(args.queries)]
            subprocess.run([*cmd, "--child", which, str(rows), str(scratch)], check=True)
            passes[which].append(json.loads(scratch.read_text()))
            print(which, round_, {n: passes[which][-1][n]["first_query_ms"] for n in ("near", "far")})
    scratch.unlink(missing_ok=True)
    load["after_timing"] = loadavg()
    exact = exact_ids(args.index, rows, args.queries, args.recall_queries)
    before, after = summarise(passes["before"], exact), summarise(passes["after"], exact)
    results = {
        "started": started,
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "loadavg_1_5_15": load | {"end": loadavg()},
        "index": str(args.index),
        "rows": rows,
        "k": K,
        "before": before,
        "after": after,
        "ratio_after_over_before": {
            name: {m: round(after[name][m] / before[name][m], 3) for m in ("p50_ms", "p95_ms")}
            for name in before
        },
        "goal": {"p50_ms": 10.0, "recall_at_10": 0.95},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps({key: results[key] for key in ("before", "after", "ratio_after_over_before")}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
