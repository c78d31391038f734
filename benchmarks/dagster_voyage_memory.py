"""Peak RSS of one Dagster ``summary_embeddings`` partition load of N 1024-d vectors: before vs after.

Issue 16: the library's loads run under a 512 MB DuckDB ``memory_limit`` with a declared-unique merge,
but the Dagster layer's warehouse loads kept DuckDB's default memory (80% of RAM) because their plain
merges still ran dlt's ``ROW_NUMBER()`` dedup window over the vectors. This measures the real asset.

For each N, one partition of N documents is prepared once with this tree (``documents``, the Claude
submit, the emulator's 1 s batches, ``claude_summaries``), the ``HARVEST_HOME`` is copied, and
``summary_embeddings`` (with its checks, as a run does) is materialized with ``dagster.materialize`` in a
fresh child process per tree: ``--baseline-src`` (a ``git archive`` of the previous ``harvest_defs``) and
this tree, against one emulator in its own process (Voyage real time, limits out of the way). Peak RSS is
the child's ``ru_maxrss``; rows are counted in the warehouse afterwards.

    git archive main harvest_defs | tar -x -C /tmp/base
    uv run python benchmarks/dagster_voyage_memory.py --n 100000 200000 --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claude_ingest import Emulator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PARTITION = "bulk"

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path

    import dagster as dg

    phase, corpus, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from harvest_defs.defs.build import build_defs
    from harvest_defs.defs.local_run import materialize_selection
    from harvest_defs.defs.partitions import COLLECTIONS_NAME
    from harvest_defs.defs.resources import VoyageResource

    voyage = VoyageResource(api_key=dg.EnvVar("VOYAGE_API_KEY"), rpm=1_000_000, tpm=10**10,
                            batch_threshold=10**9)
    defs = build_defs(corpus, resources={"voyage": voyage})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(COLLECTIONS_NAME, ["PARTITION"])

    def rows(table):
        import duckdb, os
        path = Path(os.environ["HARVEST_HOME"]) / "warehouse.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(f"SELECT count(*) FROM harvest.{table}").fetchone()[0]

    started = time.perf_counter()
    if phase == "setup":
        materialize_selection(defs, instance, ["documents", "claude_summary_batches"], "PARTITION")
        for _ in range(60):
            time.sleep(2)
            materialize_selection(defs, instance, ["claude_summaries"], "PARTITION")
            if rows("claude_messages") >= n:
                break
        out = {"claude_rows": rows("claude_messages")}
    else:
        result = materialize_selection(defs, instance, ["summary_embeddings"], "PARTITION",
                                       raise_on_error=False)
        out = {"success": result.success, "rows": rows("voyage_embeddings")}
    out["wall_s"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(out))
    """
).replace("PARTITION", PARTITION)


def write_corpus(root: Path, n: int) -> Path:
    """``n`` small Markdown documents in one collection (one partition)."""
    folder = root / PARTITION
    folder.mkdir(parents=True)
    for i in range(n):
        text = f"# Document {i}\n\nDocument {i} covers topic {i % 97} and word{i % 1013} in detail.\n"
        (folder / f"doc_{i:07d}.md").write_text(text, encoding="utf-8")
    return root


def child(phase: str, src: Path, corpus: Path, n: int, home: Path, url: str) -> dict[str, Any]:
    script = home.parent / "child.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "PYTHONUNBUFFERED": "1",
        "HARVEST_HOME": str(home),
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_BASE_URL": url,
        "VOYAGE_API_KEY": "pa-bench",
        "VOYAGE_BASE_URL": f"{url}/v1",
        "DAGSTER_HOME": str(home.parent / "dagster_home"),
    }
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(script), phase, str(corpus), str(n)],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-3000:]}
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", nargs="+", type=int, default=[100_000])
    parser.add_argument("--baseline-src", type=Path, help="a source tree of the previous harvest_defs")
    parser.add_argument("--src", type=Path, default=REPO, help="the tree measured as 'after' (default: this)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "dagster_voyage_memory.json")
    args = parser.parse_args()
    import httpx

    emulator = Emulator()
    results: dict[str, Any] = {"machine": platform.platform(), "cores": os.cpu_count(), "runs": []}
    try:
        httpx.post(f"{emulator.url}/_emulator/config", json={"batch_processing_seconds": 1.0}, timeout=30)
        for n in args.n:
            with tempfile.TemporaryDirectory(prefix="dag_mem_") as tmp:
                work = Path(tmp)
                corpus = write_corpus(work / "corpus", n)
                (work / "setup").mkdir()
                setup = child("setup", REPO, corpus, n, work / "setup" / "home", emulator.url)
                print("setup", n, json.dumps(setup), flush=True)
                run: dict[str, Any] = {"n": n, "setup": setup}
                trees = [("before", args.baseline_src)] if args.baseline_src else []
                for label, src in [*trees, ("after", args.src)]:
                    (work / label).mkdir()
                    shutil.copytree(work / "setup" / "home", work / label / "home")
                    run[label] = child("embed", src, corpus, n, work / label / "home", emulator.url)
                    print(label, n, json.dumps(run[label]), flush=True)
                    shutil.rmtree(work / label)
                results["runs"].append(run)
    finally:
        emulator.stop()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
