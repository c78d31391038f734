"""Retrieval eval: recall@5 / MRR@10 of the answer passage for summaries, chunks, contextual, + rerank.

    uv run python benchmarks/retrieval_eval.py                 # against the bundled emulator (default)
    uv run python benchmarks/retrieval_eval.py --real-apis     # ANTHROPIC_API_KEY / VOYAGE_API_KEY, real APIs

The corpus is generated (``harvest_defs/rag/eval_corpus.py``: 30 long handbooks, 120 questions, each
answered by one passage). Against the emulator the numbers prove the *mechanics* — the right passage is
retrievable, the context and the reranker are wired in and change the ranking — not model quality: the
emulator's embeddings are feature-hashed bags of words, its reranker scores each passage by how many of
the question's words it covers (pairwise, lexical), and its "context" is the document's leading
sentences. Results go to ``benchmarks/results/retrieval_eval.json`` (emulator) or
``retrieval_eval_real.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"


def _refuse_local_base_urls() -> None:
    """``--real-apis`` with a base URL still pointing at a local emulator would label lexical numbers
    "real": stop instead (unset ``ANTHROPIC_BASE_URL`` / ``VOYAGE_BASE_URL``; a remote proxy is fine)."""
    from urllib.parse import urlparse

    for name in ("ANTHROPIC_BASE_URL", "VOYAGE_BASE_URL"):
        host = urlparse(os.environ.get(name) or "").hostname or ""
        if host in {"127.0.0.1", "localhost", "::1", "0.0.0.0"}:
            raise SystemExit(f"--real-apis: {name} points at {host} (an emulator?); unset it first")
    missing = [k for k in ("ANTHROPIC_API_KEY", "VOYAGE_API_KEY") if not os.environ.get(k)]
    if missing:
        raise SystemExit(f"--real-apis needs {' and '.join(missing)} in the environment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=30)
    parser.add_argument("--questions-per-document", type=int, default=4)
    parser.add_argument("--real-apis", action="store_true", help="use the real APIs (keys from the env)")
    args = parser.parse_args()

    from harvest_defs.rag.eval_corpus import generate
    from harvest_defs.rag.eval_run import run_eval

    if args.real_apis:
        _refuse_local_base_urls()
    docs, questions = generate(args.documents, args.questions_per_document)
    server = None
    if not args.real_apis:
        from _emulator import free_port, serve

        port = free_port()
        server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
        server.start()
        time.sleep(2.0)
        os.environ.update(
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
            ANTHROPIC_API_KEY="sk-ant-eval",
            VOYAGE_BASE_URL=f"http://127.0.0.1:{port}/v1",
            VOYAGE_API_KEY="pa-eval",
        )
    try:
        with tempfile.TemporaryDirectory(prefix="retrieval_eval_") as work:
            results = run_eval(docs, questions, Path(work), log=lambda m: print(m, file=sys.stderr))
    finally:
        if server is not None:
            server.terminate()
    results["apis"] = "real" if args.real_apis else "emulator (lexical embeddings, lexical pairwise reranker)"
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("retrieval_eval_real.json" if args.real_apis else "retrieval_eval.json")
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["methods"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
