"""The newcomer's path: `harvest demo`, then `harvest ask` / `harvest search` with no setup at all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HARVEST = str(Path(sys.executable).with_name("harvest"))
SCRUBBED = ("HARVEST_HOME", "HARVEST_CORPUS", "ANTHROPIC_BASE_URL", "VOYAGE_BASE_URL")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.endswith("_API_KEY")}
    return subprocess.run([HARVEST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_ask_and_search_work_right_after_the_demo(tmp_path: Path) -> None:
    demo = _run(["demo"], tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    # The demo reranks (one emulated Voyage rerank) and shows the cited passage with its document.
    assert "answer (reranked)" in demo.stdout, demo.stdout[-3000:]
    assert re.search(r'"voyage_rerank_calls":\s+1\b', demo.stdout), demo.stdout[-3000:]
    assert "cited passage: handbook__on-call-policy--" in demo.stdout, demo.stdout[-3000:]
    assert "of document: handbook__on-call-policy" in demo.stdout
    assert "[source handbook__on-call-policy--" in demo.stdout, "the citation is printed, not eaten"
    asked = _run(
        ["ask", "How quickly must the primary on-call engineer acknowledge a page?", "--json"], tmp_path
    )
    assert asked.returncode == 0, asked.stdout + asked.stderr
    answer = json.loads(asked.stdout)
    assert "15 minutes" in answer["answer"] and "handbook__on-call-policy" in answer["cited_ids"]
    assert "demo's index" in asked.stderr and "bundled emulator" in asked.stderr
    for mode in ("vector", "keyword", "hybrid"):
        found = _run(["search", "on-call page acknowledge", "--mode", mode, "--json"], tmp_path)
        assert found.returncode == 0, found.stdout + found.stderr
        hits = json.loads(found.stdout)
        assert "handbook__on-call-policy" in [h["document_id"] for h in hits], (mode, hits)
