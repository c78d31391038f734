"""Incremental re-runs: a full chain over N small documents, then 1% edited + 0.1% deleted, then nothing.

Run: ``uv run python benchmarks/lifecycle_rerun.py [--docs 100000 --collections 10]``. Writes
``benchmarks/results/lifecycle_rerun.json``.

The whole chain runs as the daemon would (``run_chain``: corpus_sensor -> submit -> claude_batch_sensor ->
collect + embed -> rag_index_sensor -> index) on an ephemeral Dagster instance, against the emulator in
its own process (instant batches, no Voyage rate limit), so the wall time is our local work: reading and
snapshotting the corpus, hashing and diffing, loading, the index. Reported per run: wall time, the share
of the full run's time, and what was paid (Claude batch requests, Voyage texts) against what changed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _emulator import free_port, serve

RESULTS = Path(__file__).parent / "results" / "lifecycle_rerun.json"
COSTLY = (
    "anthropic_batch_requests",
    "anthropic_batches_created",
    "voyage_texts",
    "voyage_embed_calls",
    "voyage_batch_inputs",
)


def _stats(url: str) -> dict[str, int]:
    stats = httpx.get(f"{url}/_emulator/stats", timeout=30).json()
    return {k: int(stats.get(k, 0)) for k in COSTLY}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in COSTLY}


def write_corpus(root: Path, docs: int, collections: int, seed: int = 11) -> list[Path]:
    rng = random.Random(seed)
    words = [f"term{i}" for i in range(3000)]
    paths = []
    for i in range(docs):
        folder = root / f"collection-{i % collections:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        body = " ".join(rng.choice(words) for _ in range(40))
        path = folder / f"doc-{i:06d}.md"
        path.write_text(f"# Document {i}\n\nDocument {i} is about {body}.\n", encoding="utf-8")
        paths.append(path)
    return paths


def _timed_chain(defs: Any, instance: Any, cursors: dict[str, str | None]) -> dict[str, float]:
    from harvest_defs.defs.local_run import run_chain

    marks: dict[str, float] = {}
    started = time.perf_counter()

    def on_step(name: str, done: int, total: int) -> None:
        if done == total:
            marks[name] = round(time.perf_counter() - started, 2)

    run_chain(defs, instance, cursors=cursors, on_step=on_step, timeout=3600)
    marks["total"] = round(time.perf_counter() - started, 2)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument("--edit", type=float, default=0.01)
    parser.add_argument("--delete", type=float, default=0.001)
    args = parser.parse_args()

    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/_emulator/stats", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    work = Path(tempfile.mkdtemp(prefix="harvest-rerun-"))
    try:
        os.environ.update(
            {
                "ANTHROPIC_API_KEY": "sk-ant-bench",
                "ANTHROPIC_BASE_URL": url,
                "VOYAGE_API_KEY": "pa-bench",
                "VOYAGE_BASE_URL": f"{url}/v1",
                "HARVEST_HOME": str(work / "home"),
            }
        )
        import dagster as dg

        from harvest_defs.defs.build import build_defs
        from harvest_defs.defs.resources import VoyageResource

        paths = write_corpus(work / "corpus", args.docs, args.collections)
        voyage = VoyageResource(api_key=dg.EnvVar("VOYAGE_API_KEY"), rpm=1_000_000, tpm=10**10)
        defs = build_defs(work / "corpus", sensor_interval=1, resources={"voyage": voyage})
        instance = dg.DagsterInstance.ephemeral()
        cursors: dict[str, str | None] = {}
        runs: dict[str, Any] = {}

        before = _stats(url)
        runs["full"] = {"seconds": _timed_chain(defs, instance, cursors), "paid": _delta(before, _stats(url))}

        rng = random.Random(5)
        chosen = rng.sample(paths, int(args.docs * (args.edit + args.delete)))
        edited, deleted = chosen[: int(args.docs * args.edit)], chosen[int(args.docs * args.edit) :]
        for path in edited:
            path.write_text(path.read_text(encoding="utf-8") + "An edited sentence.\n", encoding="utf-8")
        for path in deleted:
            path.unlink()
        before = _stats(url)
        runs["edit_1pct_delete_0.1pct"] = {
            "seconds": _timed_chain(defs, instance, cursors),
            "paid": _delta(before, _stats(url)),
            "edited": len(edited),
            "deleted": len(deleted),
        }
        before = _stats(url)
        runs["unchanged"] = {
            "seconds": _timed_chain(defs, instance, cursors),
            "paid": _delta(before, _stats(url)),
        }
        full = runs["full"]["seconds"]["total"]
        for run in runs.values():
            run["share_of_full"] = round(run["seconds"]["total"] / full, 4)
        result = {"docs": args.docs, "collections": args.collections, "runs": runs}
        print(json.dumps(result, indent=2))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
