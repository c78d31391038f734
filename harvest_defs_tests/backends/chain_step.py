"""One step of the harvest chain in its own process: ``python -m ... <step> <home>``.

The backend, DSN, schema and storage URL come from the environment, as a run pod's would; ``home`` is this
process's own ``HARVEST_HOME`` (on the Postgres backend a fresh temp dir per step: no shared disk).
Steps: ``submit`` (Claude batch), ``sensor`` (poll until ended, as the batch sensor does), ``collect``
(results -> dlt warehouse -> Voyage embeddings -> RAG index). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import dlt
import numpy as np
import pyarrow as pa

from harvest_defs.harvest.backends import BackendSettings, open_ledger
from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline, dataset_schema
from harvest_defs.harvest.claude import ClaudeBatchHarvester
from harvest_defs_tests.rag.conftest import corpus_documents

MODEL = "claude-haiku-4-5"
DATASET = "harvest"


def _harvester(home: Path) -> ClaudeBatchHarvester:
    return ClaudeBatchHarvester(
        os.environ["ANTHROPIC_API_KEY"],
        os.environ["ANTHROPIC_BASE_URL"],
        ledger_path=home / "ledger.sqlite",
        raw_dir=home / "raw",
    )


def submit(home: Path) -> dict[str, Any]:
    prompts = [{"custom_id": doc_id, "text": text} for doc_id, text in corpus_documents().items()]
    report = _harvester(home).submit(prompts, MODEL, max_tokens=120, partition_key="sample")
    return {"batch_ids": report.batch_ids, "sent": report.requests_sent}


def sensor(home: Path) -> dict[str, Any]:
    harvester = _harvester(home)
    ended: list[str] = []
    deadline = time.monotonic() + 60
    for row in harvester.ledger.in_flight("claude", "sample"):
        assert row.batch_id is not None
        while not harvester.poll(row.batch_id).ended:
            assert time.monotonic() < deadline, "batch did not end"
            time.sleep(0.2)
        ended.append(row.batch_id)
    return {"ended": ended}


def _index_rows(settings: BackendSettings, pipeline: dlt.Pipeline) -> pa.Table:
    sql = "SELECT embedding_id, text, model, text_hash, embedding FROM {t} ORDER BY embedding_id"
    if settings.name == "postgres":
        import psycopg

        assert settings.postgres_dsn is not None
        table = f"{dataset_schema(DATASET, settings)}.voyage_embeddings"
        with psycopg.connect(settings.postgres_dsn) as con:
            rows = con.execute(sql.format(t=table)).fetchall()
        vectors = [np.asarray(r[4] if isinstance(r[4], list) else json.loads(r[4]), np.float32) for r in rows]
    else:
        with pipeline.sql_client() as client:
            rows = client.execute_sql(sql.format(t=client.make_qualified_table_name("voyage_embeddings")))
        vectors = [np.asarray(r[4], np.float32) for r in rows]
    dim = len(vectors[0])
    return pa.table(
        {
            "chunk_id": [r[0] for r in rows],
            "document_id": [r[0] for r in rows],
            "text": [r[1] for r in rows],
            "model": [r[2] for r in rows],
            "text_hash": [r[3] for r in rows],
            "embedding": pa.array([v.tolist() for v in vectors], pa.list_(pa.float32(), dim)),
        }
    )


def collect(home: Path) -> dict[str, Any]:
    from harvest_defs.harvest.voyage.resource import voyage_embeddings_batch

    settings = BackendSettings.resolve()
    harvester = _harvester(home)
    pipeline = create_harvest_pipeline(
        "harvest_chain", DATASET, duckdb_path=str(home / "warehouse.duckdb"), pipelines_dir=str(home / "dlt")
    )
    file_format = "insert_values" if settings.name == "postgres" else None
    summaries: dict[str, str] = {}
    for row in harvester.ledger.ended_uncollected("claude", "sample"):
        assert row.batch_id is not None
        tables = list(harvester.collect(row.batch_id))
        resource = dlt.resource(
            tables, name="claude_messages", primary_key="custom_id", write_disposition="merge"
        )
        pipeline.run(resource, loader_file_format=file_format)
        harvester.mark_collected(row.batch_id)
        for table in tables:
            for item in table.select(["custom_id", "response", "success"]).to_pylist():
                if item["success"]:
                    summaries[item["custom_id"]] = item["response"]
    embeddings = voyage_embeddings_batch(
        [{"id": doc_id, "text": text} for doc_id, text in sorted(summaries.items())],
        mode="realtime",
        skip_existing=False,
        api_key=os.environ["VOYAGE_API_KEY"],
        base_url=os.environ["VOYAGE_BASE_URL"],
        ledger_path=home / "ledger.sqlite",
        raw_dir=home / "raw",
    )
    pipeline.run(embeddings, loader_file_format=file_format)
    rows = _index_rows(settings, pipeline)
    if settings.name == "postgres":
        from harvest_defs.rag.pg_index import build_pg_index

        stats = build_pg_index(rows, settings, prune=True)
    else:
        from harvest_defs.rag.index import build_index

        stats = build_index(rows, home / "rag.duckdb", prune=True)
    ledger = open_ledger(home / "ledger.sqlite")
    return {
        "summaries": len(summaries),
        "indexed": stats.total_rows,
        "collected": len(ledger.batches("claude")),
    }


if __name__ == "__main__":
    step, where = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"submit": submit, "sensor": sensor, "collect": collect}[step](where)))
