"""Subprocess for the SIGKILL tests: submit to the Voyage Batch API and die right after a chosen call.

Usage: python -m harvest_defs_tests.harvest.voyage_kill_submit <base_url> <home> <n_texts> <upload|create>
The process kills itself with SIGKILL (no cleanup, no atexit) the moment the file upload or the batch
create has been answered by the server, before the harvester can record it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from harvest_defs.harvest.voyage import VoyageBatchHarvester


def texts(n: int) -> list[dict[str, str]]:
    return [{"id": f"b-{i}", "text": f"batch text {i} on subject {i % 5}"} for i in range(n)]


def main() -> None:
    base_url, home, n, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    harvester = VoyageBatchHarvester(
        api_key="pa-test-key", base_url=base_url, ledger_path=f"{home}/ledger.sqlite", raw_dir=f"{home}/raw"
    )
    resource = harvester.client.files if kill_after == "upload" else harvester.client.batches
    original = resource.create

    def create_then_die(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    resource.create = create_then_die
    harvester.submit(texts(n))


if __name__ == "__main__":
    main()
