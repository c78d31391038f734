"""The code location loads, has the documented shape, keeps SDKs and secrets out of loading."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import dagster as dg

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.resources import DUCKDB_POOL, AnthropicResource

CHAIN = ["documents", "claude_summary_batches", "claude_summaries", "summary_embeddings", "rag_index"]


def test_asset_chain_partitions_and_pools(corpus: Path) -> None:
    defs = build_defs(corpus)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        *CHAIN,
        "rag_answers",
        "chunk_embeddings",
    }
    chunks = graph.get(dg.AssetKey("chunk_embeddings"))  # issue 15: passages, beside the summaries
    assert chunks.parent_keys == {dg.AssetKey("documents"), dg.AssetKey("claude_summaries")}
    assert dg.AssetKey("chunk_embeddings") in graph.get(dg.AssetKey("rag_index")).parent_keys
    assert defs.resolve_assets_def("chunk_embeddings").op.pool == DUCKDB_POOL
    answers = graph.get(dg.AssetKey("rag_answers"))
    assert answers.parent_keys == {dg.AssetKey("rag_index")} and answers.partitions_def is None
    assert defs.resolve_assets_def("rag_answers").op.pool == DUCKDB_POOL
    for parent, child in itertools.pairwise(CHAIN):
        assert dg.AssetKey(parent) in graph.get(dg.AssetKey(child)).parent_keys
    for key in CHAIN[:-1]:
        partitions = graph.get(dg.AssetKey(key)).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name == "collections"
    assert graph.get(dg.AssetKey("rag_index")).partitions_def is None
    writers = {"claude_summaries", "summary_embeddings", "rag_index"}
    for key in CHAIN:
        assert (defs.resolve_assets_def(key).op.pool == DUCKDB_POOL) == (key in writers), key
    assert {s.name for s in defs.sensors or []} == {
        "corpus_sensor",
        "claude_batch_sensor",
        "voyage_batch_sensor",
        "rag_index_sensor",
    }
    assert not defs.schedules  # corpus_sensor does what the hourly schedule did, and adds partitions
    check_names = {c.name for checks in defs.asset_checks or [] for c in checks.check_specs}
    documents_checks = {s.name for s in defs.resolve_assets_def("documents").check_specs}
    assert documents_checks == {"all_files_readable"}
    assert check_names == {
        "failed_request_ratio",
        "embedding_dimensions",
        "every_summary_embedded",
        "index_fresh",
    }


def test_loading_the_code_location_imports_no_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from harvest_defs.definitions import defs\n"
        "defs.get_repository_def()\n"
        "heavy = ('anthropic', 'voyageai', 'openai', 'duckdb', 'pyarrow')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]"
    assert not list(tmp_path.iterdir()), "loading the code location must not write into the cwd"


def test_api_key_is_env_var_and_hidden(monkeypatch: object) -> None:
    defs = build_defs()
    resource = defs.resources["anthropic"]
    assert isinstance(resource, AnthropicResource)
    assert "sk-" not in repr(resource)
    secret = "sk-ant-should-never-show"
    shown = AnthropicResource(api_key=secret)
    assert secret not in repr(shown) and secret not in str(shown)
