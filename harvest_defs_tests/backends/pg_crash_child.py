"""The crash matrix's child on the Postgres backend: ``python -m ... TARGET STAGE HOME`` (claude, voyage).

Same kill hooks and prompts as ``reliability/crash_child.py``; the differences are the point: the ledger,
the destination (dlt ``postgres``) and the raw files (``HARVEST_STORAGE_URL``) are shared services, and
``HOME`` is a fresh folder per process, so nothing a killed process left on its disk (a ``.part`` file, a
pending dlt package) helps its successor: recovery must come from the ledger, the API and the bucket.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harvest_defs_tests.reliability import crash_child


def run_claude(home: Path) -> None:
    from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline
    from harvest_defs.harvest.claude import ClaudeBatchHarvester, claude_message_batches

    ClaudeBatchHarvester.race_wait_seconds = 0.3
    pipeline = create_harvest_pipeline("crash_claude", "ai", pipelines_dir=str(home / "dlt"))
    pipeline.run(
        claude_message_batches(
            crash_child.prompts(),
            model=crash_child.CLAUDE_MODEL,
            max_tokens=64,
            poll_interval=0.2,
            max_requests_per_batch=crash_child.PROMPTS_PER_BATCH,
            ledger_path=home / "ledger.sqlite",
            raw_dir=home / "raw",
        ),
        loader_file_format="insert_values",
    )


def run_voyage(home: Path) -> None:
    """The Voyage Batch API path: the manifest and output travel through the bucket (``batch.py``)."""
    from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline
    from harvest_defs.harvest.voyage import voyage_embeddings_batch

    pipeline = create_harvest_pipeline("crash_voyage", "ai", pipelines_dir=str(home / "dlt"))
    pipeline.run(
        voyage_embeddings_batch(
            crash_child.texts(),
            model="voyage-3.5",
            mode="batch",
            poll_interval=0.2,
            ledger_path=home / "ledger.sqlite",
            raw_dir=home / "raw",
        ),
        loader_file_format="insert_values",
    )


if __name__ == "__main__":
    target, stage, home = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    crash_child.install(target, stage)
    {"claude": run_claude, "voyage": run_voyage}[target](home)
    print("DONE", flush=True)
