"""RAG fixtures: the sample corpus embedded exactly as the emulator's Voyage route would embed it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import embed_text
from harvest_defs.rag.index import build_index
from harvest_defs_tests.defs.conftest import bare_instance, harvest_home  # noqa: F401 (the chain's fixtures)

SAMPLE = Path(__file__).resolve().parents[2] / "harvest_defs" / "sample_corpus"
DIM = 1024
MODEL = "voyage-3.5"


def corpus_documents() -> dict[str, str]:
    return {
        path.stem: path.read_text(encoding="utf-8") for path in sorted((SAMPLE / "documents").rglob("*.md"))
    }


def questions() -> list[dict[str, Any]]:
    lines = (SAMPLE / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def rows_for(texts: dict[str, str], dim: int = DIM, model: str = MODEL) -> pa.Table:
    """Index input rows as the warehouse query produces them (FixedSizeList<float32>[dim] embeddings)."""
    return pa.table(
        {
            "chunk_id": list(texts),
            "document_id": list(texts),
            "text": list(texts.values()),
            "model": [model] * len(texts),
            "text_hash": [None] * len(texts),
            "embedding": pa.array(
                [embed_text(t, dim) for t in texts.values()], type=pa.list_(pa.float32(), dim)
            ),
        }
    )


def local_embedder(dim: int = DIM) -> Callable[[str], np.ndarray]:
    """What the emulator's /v1/embeddings returns, without HTTP (for search-quality tests)."""
    return lambda text: embed_text(text, dim)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus indexed once per session (tests only read it)."""
    path = tmp_path_factory.mktemp("rag") / "rag.duckdb"
    build_index(rows_for(corpus_documents()), path)
    return path


def require_route(base_url: str, path: str, body: dict[str, Any]) -> None:
    """Skip (with the reason) when the emulator does not serve ``path`` yet."""
    response = httpx.post(
        f"{base_url.rstrip('/')}{path}", json=body, headers={"x-api-key": "probe"}, timeout=10
    )
    if response.status_code in (404, 405):
        pytest.skip(f"emulator has no {path} route yet (HTTP {response.status_code})")


@pytest.fixture
def claude_route(api_env: EmulatorServer) -> EmulatorServer:
    require_route(api_env.anthropic_base_url, "/v1/messages", {})
    return api_env


@pytest.fixture
def voyage_route(api_env: EmulatorServer) -> EmulatorServer:
    require_route(api_env.voyage_base_url, "/embeddings", {})
    return api_env
