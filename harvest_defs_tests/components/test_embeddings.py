"""Generic ``VoyageEmbeddings`` + ``RagIndex`` end to end on the emulator: the translations harvest flows
into embeddings (FLOAT[dims]) and an index by sensor ticks, a search finds the expected product, re-runs
send nothing, the Batch API path is polled by the instance's own sensor, and failures are rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster.components.core.component_tree import ComponentTree

from harvest_defs.components.shared import ComponentConfigError
from harvest_defs.components.voyage_embeddings import VoyageEmbeddings, VoyageEmbeddingsModel
from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer
from harvest_defs.rag.search import search
from harvest_defs_tests.components.conftest import LOCATION, materialization, query

EMBEDDINGS_YAML = LOCATION / "translations_search" / "embeddings"


def _translations(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    materialize_selection(defs, instance, ["translations_batches"])
    tick = tick_sensor(defs, instance, "translations_sensor", None)
    run_requests(defs, instance, tick.run_requests)


def _embeddings(**overrides: Any) -> dg.Definitions:
    attributes = yaml.safe_load((EMBEDDINGS_YAML / "defs.yaml").read_text())["attributes"]
    component = VoyageEmbeddings(VoyageEmbeddingsModel.model_validate({**attributes, **overrides}))
    return component.build_defs(ComponentTree.for_test().load_context.for_path(EMBEDDINGS_YAML))


def test_translations_embed_index_and_search(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    _translations(location_defs, instance)
    # The collect of `translations` is what the embeddings sensor follows: one run, no click.
    tick = tick_sensor(location_defs, instance, "translation_embeddings_sensor", None)
    assert [r.asset_selection for r in tick.run_requests] == [[dg.AssetKey("translation_embeddings")]]
    [embedded] = run_requests(location_defs, instance, tick.run_requests)
    meta = materialization(embedded, "translation_embeddings")
    assert meta["embeddings_written"] == 6 and meta["api_mode"] == "realtime" and meta["total_tokens"] > 0
    assert meta["dimensions"] == 512 and meta["est_usd"] >= 0
    db = harvest_home / "warehouse.duckdb"
    [(data_type,)] = query(
        db,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'harvest' "
        "AND table_name = 'translation_embeddings' AND column_name = 'embedding'",
    )
    assert data_type == "FLOAT[512]"
    rows = query(db, "SELECT embedding_id, success, model FROM harvest.translation_embeddings ORDER BY 1")
    assert rows == [(f"P-10{i}", True, "voyage-4-lite") for i in range(6)]
    checks = [c for c in embedded.get_asset_check_evaluations()]
    assert [c.passed for c in checks] == [True]

    tick = tick_sensor(location_defs, instance, "translations_index_sensor", None)
    [indexed] = run_requests(location_defs, instance, tick.run_requests)
    index_meta = materialization(indexed, "translations_index")
    assert index_meta["dagster/row_count"] == index_meta["rows_indexed"] == 6
    # The chain's index_run_metadata(), not a subset of it: the same status line and phase figures.
    assert index_meta["status"] == "6 rows indexed; this run changed 6"
    assert {"rows_added", "rebuilt", "source_rows", "phases_s", "index_path"} <= set(index_meta)
    [(text,)] = query(db, "SELECT text FROM harvest.translation_embeddings WHERE embedding_id = 'P-103'")
    question = " ".join(text.split()[:8])  # a few of its words, as a user would type them
    hits = search(question, k=3, rag_path=harvest_home / "translations_index.duckdb")
    assert hits[0].chunk_id == "P-103" and hits[0].text == text

    calls = api_env.stats().get("voyage_embed_calls", 0)
    again = materialize_selection(location_defs, instance, ["translation_embeddings"])
    meta = materialization(again, "translation_embeddings")
    assert meta["texts_unchanged"] == 6 and meta["embeddings_written"] == 0
    assert api_env.stats().get("voyage_embed_calls", 0) == calls  # a re-run embeds nothing


def test_batch_api_polled_by_the_instance_sensor_and_never_resubmitted(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    _translations(location_defs, instance)
    defs = _embeddings(batch_threshold=1)
    first = materialization(
        materialize_selection(defs, instance, ["translation_embeddings"]), "translation_embeddings"
    )
    assert first["api_mode"] == "batch" and first["texts_in_flight"] == 6 and first["embeddings_written"] == 0
    assert api_env.stats()["voyage_batches_created"] == 1
    tick = tick_sensor(defs, instance, "translation_embeddings_sensor", None)
    [request] = (
        tick.run_requests
    )  # the ended batch (the upstream was materialized before: one run serves both)
    [collected] = run_requests(defs, instance, [request])
    meta = materialization(collected, "translation_embeddings")
    assert meta["embeddings_written"] == 6 and meta["texts_in_flight"] == 0
    assert api_env.stats()["voyage_batches_created"] == 1  # collected, not submitted again
    rows = query(
        harvest_home / "warehouse.duckdb", "SELECT count(*) FROM harvest.translation_embeddings WHERE success"
    )
    assert rows == [(6,)]
    assert tick_sensor(defs, instance, "translation_embeddings_sensor", tick.cursor).run_requests == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model": "voyage-9"}, "model"),
        ({"dims": 333}, "dims"),
        ({"upstream": None}, "upstream"),
        ({"name": "Bad-Name"}, "name"),
        ({"batch_threshold": 0}, "batch_threshold"),
        ({"text_column": "a b"}, "text_column"),
    ],
)
def test_bad_configuration_names_the_file_and_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ComponentConfigError) as raised:
        _embeddings(**overrides)
    assert raised.value.field == field
    assert f"{EMBEDDINGS_YAML / 'defs.yaml'}: attributes.{field}:" in str(raised.value)


def _notes(db: Path, rows: list[tuple[str, str | None]]) -> None:
    """An upstream asset's table written straight into the warehouse (any table works as a source)."""
    import duckdb

    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS harvest")
        con.execute("CREATE OR REPLACE TABLE harvest.notes (note_id VARCHAR, body VARCHAR)")
        con.executemany("INSERT INTO harvest.notes VALUES (?, ?)", rows)
    finally:
        con.close()


def test_failures_are_rows_deletes_propagate_and_only_edits_are_paid(
    instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    db = harvest_home / "warehouse.duckdb"
    defs = _embeddings(
        name="note_vectors", upstream="notes", upstream_table=None, text_column="body", id_column="note_id"
    )
    _notes(
        db,
        [
            ("n1", "Refunds take five days."),
            ("n2", "   "),
            ("n3", "Shipping is free over 50 euros."),
            ("n4", None),
        ],
    )
    meta = materialization(materialize_selection(defs, instance, ["note_vectors"]), "note_vectors")
    assert (
        meta["embeddings_written"] == 2 and meta["embeddings_failed"] == 1 and meta["texts_skipped_null"] == 1
    )
    rows = query(
        db, "SELECT embedding_id, success, error, text_hash IS NULL FROM harvest.note_vectors ORDER BY 1"
    )
    assert rows == [("n1", True, None, False), ("n2", False, "empty text", True), ("n3", True, None, False)]

    calls = api_env.stats()["voyage_embed_calls"]
    _notes(db, [("n1", "Refunds take five working days."), ("n3", "Shipping is free over 50 euros.")])
    meta = materialization(materialize_selection(defs, instance, ["note_vectors"]), "note_vectors")
    assert (
        meta["embeddings_written"] == 1 and meta["texts_unchanged"] == 1 and meta["embeddings_deleted"] == 1
    )
    assert api_env.stats()["voyage_embed_calls"] == calls + 1  # only the edited note was sent
    rows = query(db, "SELECT embedding_id, success, text FROM harvest.note_vectors ORDER BY 1")
    assert rows == [
        ("n1", True, "Refunds take five working days."),
        ("n3", True, "Shipping is free over 50 euros."),
    ]

    _notes(db, [("n1", "Refunds take five days."), ("n3", "Shipping is free over 50 euros.")])  # a revert
    meta = materialization(materialize_selection(defs, instance, ["note_vectors"]), "note_vectors")
    assert meta["embeddings_written"] == 1 and meta["total_tokens"] == 0  # its vector came from the store
    assert api_env.stats()["voyage_embed_calls"] == calls + 1


def test_partitions_follow_the_upstream_harvest(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    from harvest_defs_tests.components.conftest import sync_partitions

    assert sync_partitions(location_defs, instance, "ticket_triage") == ["chat", "email"]
    cursor = None
    for channel in ("chat", "email"):
        materialize_selection(location_defs, instance, ["ticket_triage_batches"], channel)
        tick = tick_sensor(location_defs, instance, "ticket_triage_sensor", cursor)
        cursor = tick.cursor
        run_requests(location_defs, instance, tick.run_requests)
    defs = dg.Definitions.merge(
        location_defs,
        _embeddings(
            name="ticket_vectors", upstream="ticket_triage", upstream_table=None, partitions="upstream"
        ),
    )
    tick = tick_sensor(defs, instance, "ticket_vectors_sensor", None)
    assert sorted(r.partition_key for r in tick.run_requests) == ["chat", "email"]  # one run per partition
    for result in run_requests(defs, instance, tick.run_requests):
        assert materialization(result, "ticket_vectors")["embeddings_written"] == 6
    rows = query(
        harvest_home / "warehouse.duckdb",
        "SELECT v.partition_key, t.partition_key, count(*) FROM harvest.ticket_vectors v "
        "JOIN harvest.ticket_triage t ON t.custom_id = v.embedding_id GROUP BY ALL ORDER BY 1",
    )
    assert rows == [("chat", "chat", 6), ("email", "email", 6)]
    assert tick_sensor(defs, instance, "ticket_vectors_sensor", tick.cursor).run_requests == []
