"""Peak memory and wall time of the harvest at millions of prompts: before (a source tree) vs after, same run.

Every measurement runs in a fresh child process (peak RSS = the child's ``ru_maxrss``, so nothing the
parent or an earlier case allocated counts) against one emulator in its own process (1 s batches, no rate
limits: a remote API whose memory is not ours). Cases:

- ``claude_e2e``: ``pipeline.run(claude_message_batches(source, ...))`` into DuckDB, source = a list, a
  generator or a Parquet path; rows in the table are checked afterwards.
- ``claude_submit``: ``ClaudeBatchHarvester.submit(generator)`` only (no waiting, no collect).
- ``voyage_rt``: ``pipeline.run(voyage_embeddings_batch(texts, mode="realtime"))`` (1024-d vectors).
- ``voyage_load``: dlt's load side alone: ``n`` synthetic 1024-d rows (``embedding_schema``, 5,000 per
  table) into ``voyage_embeddings`` with the resource's disposition (source ``dedup``) or dlt's plain
  merge (source ``plain``); no API, so the peak is extract + normalize + DuckDB's load.

``--baseline-src`` points at a source tree of the previous library (``git archive <rev> harvest_defs``):
its cases run with the same children, the same emulator and the same prompts, in the same session.

    uv run python benchmarks/scale_memory.py --cases claude_e2e:generator:1000000 \
        --baseline-src /tmp/mem_baseline --baseline-cases claude_e2e:list:1000000
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
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claude_ingest import Emulator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path

    case, source, n, work, url = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
    MODEL = "claude-haiku-4-5"

    def prompts():
        for i in range(n):
            text = f"Summarize: Document {i} covers topic {i % 97}. It explains the details. It ends here."
            yield {"custom_id": f"doc_{i}", "text": text}

    def texts():
        for i in range(n):
            text = f"Document {i} covers topic {i % 97} and word{i % 1013} in detail."
            yield {"id": f"t_{i}", "text": text}

    def parquet(rows, path):
        import pyarrow as pa, pyarrow.parquet as pq
        writer, batch = None, []
        for row in rows:
            batch.append(row)
            if len(batch) == 100_000:
                t = pa.Table.from_pylist(batch)
                writer = writer or pq.ParquetWriter(path, t.schema)
                writer.write_table(t)
                batch = []
        if batch:
            t = pa.Table.from_pylist(batch)
            writer = writer or pq.ParquetWriter(path, t.schema)
            writer.write_table(t)
        writer.close()
        return path

    def make(gen):
        if source == "list":
            return list(gen())
        if source == "generator":
            return gen()
        if source == "parquet":  # written by a "prepare:" child first: its memory is not this run's
            path = work / "input.parquet"
            return path if path.exists() else parquet(gen(), path)
        raise SystemExit(f"unknown source {source}")

    if case.startswith("prepare:"):
        case = case.split(":", 1)[1]
        make(prompts if case.startswith("claude") else texts)
        raise SystemExit(0)
    src = None if case == "voyage_load" else make(prompts if case.startswith("claude") else texts)
    started = time.perf_counter()
    out = {}
    if case == "claude_submit":
        from harvest_defs.harvest.claude import ClaudeBatchHarvester
        h = ClaudeBatchHarvester("sk-ant-bench", url, ledger_path=work / "ledger.sqlite",
                                 raw_dir=work / "raw", log=lambda m: None)
        report = h.submit(src, MODEL, max_tokens=64)
        out = {"sent": report.requests_sent, "batches": len(report.batch_ids)}
    else:
        import logging
        logging.basicConfig(level=logging.WARNING)
        import duckdb
        from harvest_defs.harvest.pipeline import create_duckdb_pipeline
        pipeline = create_duckdb_pipeline("scale", "ai", destination_path=str(work / "w.duckdb"),
                                          pipelines_dir=str(work / "pipes"))
        if case == "claude_e2e":
            from harvest_defs.harvest.claude import claude_message_batches
            pipeline.run(claude_message_batches(src, model=MODEL, max_tokens=64, api_key="sk-ant-bench",
                                                base_url=url, poll_interval=0.5,
                                                ledger_path=work / "ledger.sqlite", raw_dir=work / "raw"))
            table = "claude_messages"
        elif case == "voyage_load":
            import dlt
            import numpy as np
            from harvest_defs.harvest.dedup import MERGE_DISPOSITION
            from harvest_defs.harvest.voyage.arrow import embeddings_table
            from harvest_defs.harvest.voyage.resource import embedding_column_hints

            def synthetic():
                rng = np.random.default_rng(0)
                for start in range(0, n, 5000):
                    ids = [f"t_{i}" for i in range(start, min(n, start + 5000))]
                    yield embeddings_table(ids=ids, texts=[f"Document {i}" for i in ids], text_hashes=ids,
                                           vectors=rng.random((len(ids), 1024), dtype=np.float32),
                                           tokens=[10] * len(ids), model="voyage-3.5", dim=1024,
                                           input_type="document", processing_time_ms=1.0)
            disposition = MERGE_DISPOSITION if source == "dedup" else "merge"
            pipeline.run(dlt.resource(synthetic(), name="voyage_embeddings", write_disposition=disposition,
                                      primary_key="embedding_id", columns=embedding_column_hints(1024)))
            table = "voyage_embeddings"
        else:
            from harvest_defs.harvest.voyage import voyage_embeddings_batch
            pipeline.run(voyage_embeddings_batch(src, model="voyage-3.5", api_key="pa-bench",
                                                 base_url=url + "/v1", mode="realtime",
                                                 rpm=1_000_000, tpm=10**10, ledger_path=work / "l.sqlite",
                                                 raw_dir=work / "raw"))
            table = "voyage_embeddings"
        with duckdb.connect(str(work / "w.duckdb"), read_only=True) as con:
            out = {"rows": con.execute(f"SELECT count(*) FROM ai.{table}").fetchone()[0]}
    out["wall_s"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(out))
    """
)


def run_case(spec: str, src: Path, emulator: Emulator) -> dict[str, Any]:
    """One ``case:source:n`` in a fresh child with ``src`` first on the path."""
    case, source, n = spec.split(":")
    with tempfile.TemporaryDirectory(prefix="scale_mem_") as tmp:
        emulator.reset()
        httpx.post(f"{emulator.url}/_emulator/config", json={"batch_processing_seconds": 1.0}, timeout=30)
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1"}
        if source == "parquet":
            args = [sys.executable, str(script), f"prepare:{case}", source, n, tmp, emulator.url]
            subprocess.run(args, env=env, cwd=tmp, check=True)
        before = emulator.stats()
        proc = subprocess.run(
            [sys.executable, str(script), case, source, n, tmp, emulator.url],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        after = emulator.stats()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"case": spec, "error": (proc.stderr or proc.stdout)[-2000:]}
    result = {"case": spec, **json.loads(lines[-1][len("RESULT ") :])}
    result["per_prompt_us"] = round(result["wall_s"] / int(n) * 1e6, 1)
    result["emulator"] = {k: after.get(k, 0) - before.get(k, 0) for k in after if isinstance(after[k], int)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", default=[], help="case:source:n run with this tree")
    parser.add_argument("--baseline-src", type=Path, help="a source tree of the previous library")
    parser.add_argument("--baseline-cases", nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale_memory.json")
    args = parser.parse_args()
    emulator = Emulator()
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "before": [],
        "after": [],
    }
    try:
        for spec in args.baseline_cases:
            assert args.baseline_src, "--baseline-cases needs --baseline-src"
            results["before"].append(run_case(spec, args.baseline_src, emulator))
            print("before", json.dumps(results["before"][-1]), flush=True)
        for spec in args.cases:
            results["after"].append(run_case(spec, REPO, emulator))
            print("after", json.dumps(results["after"][-1]), flush=True)
    finally:
        emulator.stop()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
