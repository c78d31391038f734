"""pgvector HNSW vs DuckDB vss, same vectors, same run; and 100k Claude result rows loaded into each.

1. Vectors: ``--rows`` clustered unit vectors (``vector_search.ClusteredVectors``, the same generator as
   ``vector_search.py``) of ``--dim`` dimensions. DuckDB: bulk insert into the RAG ``chunks`` table, then
   the vss HNSW build (``create_hnsw_index``). Postgres (pgserver: PostgreSQL 16 + pgvector 0.6, local
   socket): ``build_pg_index`` (binary COPY, upsert, then the HNSW ``vector_cosine_ops`` build). Both use
   m=16, ef_construction=128, ef_search=128. Reported per backend: load and build seconds, p50/p95 of
   top-10 queries through each backend's ``vector_search``, recall@10 against that backend's exact scan.
2. Claude results: ``--claude-rows`` rows with the ``claude_messages`` schema (Arrow, ~600-character
   responses) loaded by dlt (merge on ``custom_id``) into the DuckDB file and into the Postgres
   destination; rows/s, and the ratio Postgres/DuckDB.

Postgres gets ``maintenance_work_mem = 1GB`` so the HNSW graph is built in memory (the default 64 MB makes
pgvector fall back to a much slower on-disk build at this size), stated in the results.

    uv run python benchmarks/pgvector_vs_duckdb.py [--rows 100000] [--claude-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vector_search import ClusteredVectors, _arrow_batch, percentile

from harvest_defs.harvest.backends import BackendSettings

RESULTS = Path(__file__).resolve().parent / "results" / "pgvector_vs_duckdb.json"


def _query_stats(search: Any, exact: Any, con: Any, queries: np.ndarray, exact_n: int) -> dict[str, float]:
    truth = [{h.chunk_id for h in exact(con, q, 10)} for q in queries[:exact_n]]
    search(con, queries[0], 10)  # warm-up
    times, recalls = [], []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        hits = search(con, q, 10)
        times.append((time.perf_counter() - t0) * 1000)
        if i < len(truth):
            recalls.append(len({h.chunk_id for h in hits} & truth[i]) / 10)
    return {
        "p50_ms": round(percentile(times, 50), 3),
        "p95_ms": round(percentile(times, 95), 3),
        "recall_at_10": round(statistics.mean(recalls), 4),
    }


def bench_duckdb_vectors(
    batches: list[pa.Table], queries: np.ndarray, args: Any, work: Path
) -> dict[str, Any]:
    from harvest_defs.rag.extensions import connect
    from harvest_defs.rag.schema import CHUNKS_TABLE, create_hnsw_index, create_tables, write_meta
    from harvest_defs.rag.search import exact_search, vector_search

    con = connect(work / "vectors.duckdb")
    con.execute("SET hnsw_enable_experimental_persistence = true")
    con.execute("SET disabled_compression_methods = 'alprd'")
    create_tables(con, args.dim)
    write_meta(con, {"dim": str(args.dim)})
    started = time.perf_counter()
    for batch in batches:
        con.register("batch", batch)
        con.execute(
            f"INSERT INTO {CHUNKS_TABLE} (chunk_id, document_id, text, model, text_hash, embedding) "
            "SELECT * FROM batch"
        )
        con.unregister("batch")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    create_hnsw_index(con)
    build_s = time.perf_counter() - started
    stats = _query_stats(vector_search, exact_search, con, queries, args.exact_queries)
    con.close()
    return {"load_s": round(load_s, 2), "hnsw_build_s": round(build_s, 2), **stats}


def bench_pg_vectors(
    batches: list[pa.Table], queries: np.ndarray, args: Any, settings: BackendSettings
) -> dict[str, Any]:
    from harvest_defs.rag import pg_index
    from harvest_defs.rag.pg_search import exact_search, vector_search

    # Time the load and the HNSW build apart: load with the index creation deferred, then build it.
    create = pg_index._create_search_indexes
    pg_index._create_search_indexes = lambda con: None  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        pg_index.build_pg_index(pa.concat_tables(batches), settings)
    finally:
        pg_index._create_search_indexes = create
    load_s = time.perf_counter() - started
    with pg_index.connect_index(settings) as con:
        started = time.perf_counter()
        create(con)
        build_s = time.perf_counter() - started
        con.execute("ANALYZE chunks")
        stats = _query_stats(vector_search, exact_search, con, queries, args.exact_queries)
    return {"load_s": round(load_s, 2), "hnsw_build_s": round(build_s, 2), **stats}


def claude_rows(n: int) -> pa.Table:
    from harvest_defs.harvest.claude import CLAUDE_MESSAGES_SCHEMA

    rng = np.random.default_rng(7)
    words = np.array(
        ["the", "batch", "result", "index", "vector", "summary", "document", "policy", "engineer", "page"]
    )
    responses = [" ".join(rng.choice(words, 90)) for _ in range(1000)]
    now = datetime.now(UTC)
    columns: dict[str, Any] = {
        "batch_id": [f"msgbatch_{i // 10000:04d}" for i in range(n)],
        "custom_id": [f"doc_{i}" for i in range(n)],
        "prompt": [f"Summarize document {i}." for i in range(n)],
        "response": [responses[i % 1000] for i in range(n)],
        "model": ["claude-haiku-4-5"] * n,
        "input_tokens": [120] * n,
        "output_tokens": [90] * n,
        "created_at": [now] * n,
        "processing_time_ms": [None] * n,
        "success": [True] * n,
        "error": [None] * n,
        "error_type": [None] * n,
        "request_hash": [f"{i:064x}" for i in range(n)],
        "stop_reason": ["end_turn"] * n,
        "cache_creation_input_tokens": [0] * n,
        "cache_read_input_tokens": [0] * n,
        "result_type": ["succeeded"] * n,
    }
    arrays = [
        pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type)
        for f in CLAUDE_MESSAGES_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=CLAUDE_MESSAGES_SCHEMA)


def bench_claude_load(table: pa.Table, settings: BackendSettings, work: Path, name: str) -> dict[str, Any]:
    import dlt

    from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline

    pipeline = create_harvest_pipeline(
        f"bench_{name}",
        "bench",
        duckdb_path=str(work / "claude.duckdb"),
        pipelines_dir=str(work / f"dlt_{name}"),
        settings=settings,
    )
    resource = dlt.resource(table, name="claude_messages", primary_key="custom_id", write_disposition="merge")
    started = time.perf_counter()
    info = pipeline.run(resource)
    seconds = time.perf_counter() - started
    formats = sorted(
        {
            job.job_file_info.file_format
            for package in info.load_packages
            for job in package.jobs["completed_jobs"]
        }
    )
    return {
        "rows": table.num_rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(table.num_rows / seconds),
        "file_format": formats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=50)
    parser.add_argument("--claude-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import pgserver
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    root.chmod(0o755)
    server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
    try:
        dsn = server.get_uri()
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector")
            con.execute("ALTER SYSTEM SET maintenance_work_mem = '1GB'")
            con.execute("SELECT pg_reload_conf()")
            pg_version = con.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
        pg = BackendSettings("postgres", dsn, "bench")
        gen = ClusteredVectors(args.dim, args.clusters, args.noise, seed=args.rows)
        batches = [_arrow_batch(start, vectors) for start, vectors in gen.batches(args.rows)]
        queries = gen.sample(args.queries)
        results: dict[str, Any] = {
            "machine": f"{platform.machine()}, shared noisy 2 cores",
            "rows": args.rows,
            "dim": args.dim,
            "pgvector": pg_version[0] if pg_version else None,
            "postgres_maintenance_work_mem": "1GB",
        }
        results["vectors"] = {"duckdb_vss": bench_duckdb_vectors(batches, queries, args, root)}
        print(json.dumps(results["vectors"]), flush=True)
        results["vectors"]["pgvector"] = bench_pg_vectors(batches, queries, args, pg)
        print(json.dumps(results["vectors"]), flush=True)
        del batches
        table = claude_rows(args.claude_rows)
        duck = bench_claude_load(table, BackendSettings(), root, "duckdb")
        post = bench_claude_load(table, pg, root, "postgres")
        results["claude_load"] = {
            "duckdb": duck,
            "postgres": post,
            "postgres_over_duckdb_throughput": round(post["rows_per_s"] / duck["rows_per_s"], 3),
        }
        v = results["vectors"]
        results["ratios_pg_over_duckdb"] = {
            key: round(v["pgvector"][key] / v["duckdb_vss"][key], 3)
            for key in ("hnsw_build_s", "p50_ms", "p95_ms")
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
