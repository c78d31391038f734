"""corpus_sensor: partitions follow the corpus's folders (no reload), only changed collections are harvested,
a range backfill is one run, and a removed collection is emptied from every table before its key goes."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import materialize_selection, run_chain, tick_sensor
from harvest_defs.defs.partitions import COLLECTIONS_NAME
from harvest_defs.emulator import EmulatorServer


def _keys(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(COLLECTIONS_NAME))


def test_sensor_adds_partitions_and_requests_only_changed_collections(
    corpus: Path, harvest_home: Path, bare_instance: dg.DagsterInstance
) -> None:
    defs = build_defs(corpus)
    first = tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert _keys(bare_instance) == ["alpha", "beta", "gamma"]
    assert sorted(r.partition_key or "" for r in first.run_requests) == ["alpha", "beta", "gamma"]
    assert all(
        set(r.asset_selection or []) == {dg.AssetKey("documents"), dg.AssetKey("claude_summary_batches")}
        for r in first.run_requests
    )

    # A backfill over the whole range is one run (single-run policy) that snapshots every collection.
    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.assets("documents"),
        instance=bare_instance,
        resources=dict(defs.resources or {}),
        tags={"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "gamma"},
    )
    assert result.success
    assert tick_sensor(defs, bare_instance, "corpus_sensor", None).run_requests == []
    snapshot = pq.read_table(harvest_home / "documents" / "beta.parquet").to_pylist()
    assert sorted(r["document_id"] for r in snapshot) == ["beta__python", "beta__rust"]

    (corpus / "beta" / "go.md").write_text("# Go\n\nGo has goroutines and channels.\n", encoding="utf-8")
    (corpus / "delta").mkdir()
    (corpus / "delta" / "new.md").write_text("A new collection, no reload needed.\n", encoding="utf-8")
    changed = tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert sorted(r.partition_key or "" for r in changed.run_requests) == ["beta", "delta"]
    assert _keys(bare_instance) == ["alpha", "beta", "delta", "gamma"]


def test_top_level_files_never_collide_with_a_folder_named_root(
    tmp_path: Path, harvest_home: Path, bare_instance: dg.DagsterInstance
) -> None:
    corpus = tmp_path / "c"
    (corpus / "root").mkdir(parents=True)
    (corpus / "root" / "notes.md").write_text("Notes inside a folder called root.\n", encoding="utf-8")
    (corpus / "notes.md").write_text("Notes at the top level.\n", encoding="utf-8")
    defs = build_defs(corpus)  # used to fail: duplicate partition key "root"
    tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert _keys(bare_instance) == [".root", "root"]
    for key in (".root", "root"):
        materialize_selection(defs, bare_instance, ["documents"], key)
    snapshots = {
        key: pq.read_table(harvest_home / "documents" / f"{key}.parquet") for key in (".root", "root")
    }
    ids = {key: table.column("document_id").to_pylist() for key, table in snapshots.items()}
    assert ids == {".root": ["notes"], "root": ["root__notes"]}


def test_removed_collection_leaves_every_table_then_its_partition(
    corpus: Path, harvest_home: Path, bare_instance: dg.DagsterInstance, api_env: EmulatorServer
) -> None:
    defs = build_defs(corpus, sensor_interval=1)
    cursors: dict[str, str | None] = {}
    run_chain(defs, bare_instance, cursors=cursors)
    warehouse = harvest_home / "warehouse.duckdb"

    def ids(sql: str) -> set[str]:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return {r[0] for r in con.execute(sql).fetchall()}
        finally:
            con.close()

    assert "alpha__ducks" in ids("SELECT custom_id FROM harvest.claude_messages")
    shutil.rmtree(corpus / "alpha")
    before = api_env.stats()
    run_chain(defs, bare_instance, cursors=cursors)
    assert not any(i.startswith("alpha") for i in ids("SELECT custom_id FROM harvest.claude_messages"))
    assert not any(i.startswith("alpha") for i in ids("SELECT embedding_id FROM harvest.voyage_embeddings"))
    from harvest_defs.rag.index import indexed_ids

    assert not any(i.startswith("alpha") for i in indexed_ids(harvest_home / "rag.duckdb"))
    assert api_env.stats().get("anthropic_batches_created", 0) == before.get("anthropic_batches_created", 0)
    # The key goes on the next tick, once no submission of it is open.
    tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert _keys(bare_instance) == ["beta", "gamma"]


def test_auto_submit_off_keeps_partitions_but_waits_for_a_click(
    corpus: Path, harvest_home: Path, bare_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HARVEST_CORPUS_AUTO_SUBMIT=0: partitions follow the folders; no paid harvest starts by itself."""
    monkeypatch.setenv("HARVEST_CORPUS_AUTO_SUBMIT", "0")
    defs = build_defs(corpus)
    tick = tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert _keys(bare_instance) == ["alpha", "beta", "gamma"] and tick.run_requests == []
    again = tick_sensor(defs, bare_instance, "corpus_sensor", None)
    assert again.run_requests == []
    assert "HARVEST_CORPUS_AUTO_SUBMIT=0" in str(again.skip_reason), again.skip_reason
