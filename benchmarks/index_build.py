"""The RAG index build at scale: peak RSS, build time, p50/p95 and recall@10, before (a source tree) vs after.

Each case is ``label:rows``; it runs ``build_index(<relation over a warehouse table>, path, prune=True)``
(exactly what the ``rag_index`` asset does) in a fresh child process with the given source tree first on
``PYTHONPATH``; peak RSS is that child's ``ru_maxrss`` (DuckDB, the ANN index and Python together). Then the
child times ``vector_search`` (top-10) through the same tree and measures recall@10 against
``exact_search`` (a brute-force scan over the same DuckDB table), for queries near the data (its topic
centres) and far from it (other centres; the first before-run at 200k measured only these). The vectors
are the clustered unit vectors of ``vector_search.py`` (1000 centres, noise 0.6), written to a DuckDB
"warehouse" file by a separate child first, so neither their generation nor the warehouse write counts.

``--baseline-src`` is a tree of the previous library (``git archive <rev> harvest_defs``).

    git archive e80bfe2 harvest_defs | tar -x -C /tmp/idx_before
    uv run python benchmarks/index_build.py --baseline-src /tmp/idx_before --baseline-cases 200000 \
        --cases 200000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = textwrap.dedent(
    """
    import json, resource, statistics, sys, time
    from pathlib import Path
    import numpy as np

    sys.path.insert(0, sys.argv[5])
    from vector_search import ClusteredVectors, _arrow_batch

    mode, n, work, queries = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    warehouse = work / "warehouse.duckdb"
    if mode == "prepare":
        import duckdb
        con = duckdb.connect(str(warehouse))
        con.execute("SET disabled_compression_methods = 'alprd'")
        for start, vectors in ClusteredVectors(1024, 1000, 0.6, seed=n).batches(n):
            con.register("b", _arrow_batch(start, vectors))
            if start == 0:
                con.execute("CREATE TABLE emb AS SELECT * FROM b")
            else:
                con.execute("INSERT INTO emb SELECT * FROM b")
            con.unregister("b")
        con.close()
        raise SystemExit(0)

    import duckdb, logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from harvest_defs.rag.index import build_index, open_index
    from harvest_defs.rag.search import exact_search, vector_search

    from harvest_defs.rag import incoming
    # As the rag_index asset opens the warehouse (a small buffer pool); an older tree opens it plainly.
    opener = getattr(incoming, "source_connection", None)
    source = opener(warehouse) if opener else duckdb.connect(str(warehouse), read_only=True)
    rows = source.sql("SELECT chunk_id, document_id, text, model, text_hash, embedding FROM emb")
    started = time.perf_counter()
    stats = build_index(rows, work / "rag.duckdb", prune=True)
    build_s = time.perf_counter() - started
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del rows
    source.close()
    con = open_index(work / "rag.duckdb")

    def measure(qs):
        t0 = time.perf_counter()
        vector_search(con, qs[0], 10)
        first_ms = (time.perf_counter() - t0) * 1000
        lat, recalls = [], []
        for i, q in enumerate(qs):
            t0 = time.perf_counter()
            hits = vector_search(con, q, 10)
            lat.append((time.perf_counter() - t0) * 1000)
            if i < 20:
                exact = {h.chunk_id for h in exact_search(con, q, 10)}
                recalls.append(len(exact & {h.chunk_id for h in hits}) / 10)
        return {
            "first_query_ms": round(first_ms, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "recall_at_10": round(statistics.mean(recalls), 4),
            "queries": len(lat),
            "recall_queries": len(recalls),
        }

    # In-distribution queries (the data's topic centres, fresh noise: what vector_search.py measured) and
    # off-distribution ones (other centres: far from every row, near-ties everywhere, the hard case).
    near = ClusteredVectors(1024, 1000, 0.6, seed=n)
    near.rng = np.random.default_rng(n + 2)
    quality = {
        "near_queries": measure(near.sample(queries)),
        "far_queries": measure(ClusteredVectors(1024, 1000, 0.6, seed=n + 1).sample(queries)),
    }
    con.close()
    files = {p.name: round(p.stat().st_size / 1e6, 1) for p in work.iterdir() if "rag.duckdb" in p.name}
    out = {
        "rows": stats.total_rows,
        "build_s": round(build_s, 1),
        "peak_rss_mb_build": round(build_peak, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **quality,
        "files_mb": files,
        "stats": stats.as_dict(),
    }
    print("RESULT " + json.dumps(out))
    """
)


def run_case(n: int, src: Path, queries: int, workdir: Path | None, keep: bool = False) -> dict[str, Any]:
    """Build and query an index of ``n`` vectors with ``src`` first on the path, in fresh children.

    With ``keep`` the case's directory (warehouse, ``rag.duckdb`` and its ANN sidecar) survives, so a
    built 1M index can be profiled and re-queried (``benchmarks/query_latency.py``) without a rebuild.
    """
    kept = nullcontext(tempfile.mkdtemp(prefix="index_build_", dir=workdir)) if keep else None
    with kept or tempfile.TemporaryDirectory(prefix="index_build_", dir=workdir) as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1"}
        base = [sys.executable, str(script)]
        tail = [str(n), tmp, str(queries), str(HERE)]
        subprocess.run([*base, "prepare", *tail], env=env, cwd=tmp, check=True)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(Path(tmp) / "child.log", "w") as log:  # the build's phase log, echoed below
            proc = subprocess.run(
                [*base, "build", *tail], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=log, text=True
            )
        child_log = (Path(tmp) / "child.log").read_text()
        print(child_log[-3000:], file=sys.stderr, flush=True)
        if keep:
            print(f"kept {tmp}", file=sys.stderr, flush=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"rows": n, "error": (child_log or proc.stdout)[-3000:]}
    return {"started": started, **json.loads(lines[-1][len("RESULT ") :])}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", type=int, default=[], help="row counts built with this tree")
    parser.add_argument("--baseline-src", type=Path, help="a source tree of the previous library")
    parser.add_argument("--baseline-cases", nargs="*", type=int, default=[])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep each case's built files (in --workdir)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "index_build.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "before": [],
        "after": [],
    }
    for n in args.baseline_cases:
        assert args.baseline_src, "--baseline-cases needs --baseline-src"
        results["before"].append(run_case(n, args.baseline_src, args.queries, args.workdir, args.keep))
        print("before", json.dumps(results["before"][-1]), flush=True)
    for n in args.cases:
        results["after"].append(run_case(n, REPO, args.queries, args.workdir, args.keep))
        print("after", json.dumps(results["after"][-1]), flush=True)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
