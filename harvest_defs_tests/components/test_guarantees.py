"""A ``ClaudeBatchHarvest`` of one's own keeps the chain's guarantees: failures are rows (a response that
does not match the schema too), deletes propagate, the budget bound holds, nothing is paid twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster.components.core.component_tree import ComponentTree

from harvest_defs.components.claude_batch_harvest import ClaudeBatchHarvest, ClaudeBatchHarvestModel
from harvest_defs.components.output_schema import RESERVED_COLUMNS, SCHEMA_INVALID
from harvest_defs.components.scaffold import example_attributes
from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude.results import CLAUDE_MESSAGES_SCHEMA
from harvest_defs_tests.components.conftest import materialization, query

ROWS = [
    {"id": "a1", "text": "The refund never arrived and I am angry.", "topic": "billing"},
    {"id": "a2", "text": "Lovely product, thank you so much.", "topic": "praise"},
    {"id": "a3", "text": "Where can I download my invoice?", "topic": "billing"},
]


def _instance(folder: Path, rows: list[dict[str, Any]], **overrides: Any) -> dg.Definitions:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    attributes = {**example_attributes("mine"), **overrides}
    component = ClaudeBatchHarvest(ClaudeBatchHarvestModel.model_validate(attributes))
    return component.build_defs(ComponentTree.for_test().load_context.for_path(folder))


def _harvest(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[Any, Any, Any]:
    submitted = materialize_selection(defs, instance, ["mine_batches"])
    tick = tick_sensor(defs, instance, "mine_sensor", cursor)
    [collected] = run_requests(defs, instance, tick.run_requests)
    return materialization(submitted, "mine_batches"), materialization(collected, "mine"), tick.cursor


def test_reserved_columns_cover_claude_messages() -> None:
    assert set(CLAUDE_MESSAGES_SCHEMA.names) <= RESERVED_COLUMNS


def test_schema_invalid_response_is_a_failure_row_and_not_bought_again(
    tmp_path: Path, harvest_home: Path, api_env: EmulatorServer, instance: dg.DagsterInstance
) -> None:
    # 3 output tokens cut the JSON object short: the API "succeeded", the row must not.
    defs = _instance(tmp_path / "mine", ROWS, max_tokens=3)
    sent, collected, _ = _harvest(defs, instance, None)
    assert sent["requests_sent"] == 3
    assert collected["schema_invalid"] == 3 and collected["requests_failed"] == 3
    rows = query(
        harvest_home / "warehouse.duckdb", "SELECT success, error_type, error, sentiment FROM harvest.mine"
    )
    assert len(rows) == 3
    for success, error_type, error, sentiment in rows:
        assert success is False and error_type == SCHEMA_INVALID and "not JSON" in error
        assert sentiment is None
    before = api_env.stats()["anthropic_http_requests"]
    again = materialize_selection(defs, instance, ["mine_batches"])
    assert materialization(again, "mine_batches")["requests_sent"] == 0
    assert api_env.stats()["anthropic_http_requests"] == before


def test_removed_rows_are_deleted_and_changed_rows_resent_only(
    tmp_path: Path, harvest_home: Path, api_env: EmulatorServer, instance: dg.DagsterInstance
) -> None:
    defs = _instance(tmp_path / "mine", ROWS)
    sent, collected, cursor = _harvest(defs, instance, None)
    assert sent["requests_sent"] == 3 and collected["rows_written"] == 3
    # the upper bound really bounds what the emulator billed
    assert sent["est_usd_upper_bound"] >= collected["est_usd"] > 0

    changed = [ROWS[0], {**ROWS[2], "text": "Where can I download last month's invoice as PDF?"}]
    defs = _instance(tmp_path / "mine", changed)
    sent, collected, _ = _harvest(defs, instance, cursor)
    assert sent["requests_sent"] == 1 and sent["requests_cached"] == 1  # only the edited row is paid for
    assert collected["rows_deleted"] == 1 and collected["rows_unchanged"] == 1
    ids = query(harvest_home / "warehouse.duckdb", "SELECT custom_id FROM harvest.mine ORDER BY 1")
    assert ids == [("a1",), ("a3",)]


def test_a_vanished_partition_value_is_emptied_then_removed(
    tmp_path: Path, harvest_home: Path, api_env: EmulatorServer, instance: dg.DagsterInstance
) -> None:
    defs = _instance(tmp_path / "mine", ROWS, partitions={"column": "topic"})
    tick = tick_sensor(defs, instance, "mine_sensor", None)
    assert sorted(instance.get_dynamic_partitions("mine_partitions")) == ["billing", "praise"]
    cursor = tick.cursor
    for topic in ("billing", "praise"):
        materialize_selection(defs, instance, ["mine_batches"], topic)
        tick = tick_sensor(defs, instance, "mine_sensor", cursor)
        cursor = tick.cursor
        run_requests(defs, instance, tick.run_requests)
    db = harvest_home / "warehouse.duckdb"
    assert query(db, "SELECT count(*) FROM harvest.mine WHERE partition_key = 'praise'") == [(1,)]

    defs = _instance(
        tmp_path / "mine", [r for r in ROWS if r["topic"] != "praise"], partitions={"column": "topic"}
    )
    tick = tick_sensor(defs, instance, "mine_sensor", cursor)
    [empty] = tick.run_requests  # first its rows go (the key is still needed for that run) ...
    assert empty.partition_key == "praise" and empty.asset_selection == [dg.AssetKey("mine")]
    assert instance.get_dynamic_partitions("mine_partitions") == ["billing", "praise"]
    [result] = run_requests(defs, instance, [empty])
    assert materialization(result, "mine")["rows_deleted"] == 1
    assert query(db, "SELECT count(*) FROM harvest.mine WHERE partition_key = 'praise'") == [(0,)]
    tick = tick_sensor(defs, instance, "mine_sensor", tick.cursor)  # ... then the key
    assert tick.run_requests == []
    assert instance.get_dynamic_partitions("mine_partitions") == ["billing"]
    assert query(db, "SELECT count(*) FROM harvest.mine") == [(2,)]


def test_max_usd_total_caps_all_submit_runs_of_an_instance(
    tmp_path: Path, harvest_home: Path, api_env: EmulatorServer, instance: dg.DagsterInstance
) -> None:
    defs = _instance(tmp_path / "mine", ROWS[:1], max_usd_total=1.0)
    first = materialization(materialize_selection(defs, instance, ["mine_batches"]), "mine_batches")
    assert first["requests_sent"] == 1 and first["est_usd_sent"] == first["est_usd_upper_bound"] > 0
    assert first["max_usd_scope"] == "per submit run" and first["est_usd_sent_before"] == 0
    # Two more rows would be about twice the first run's bound: over a total of 1.5x, though each run alone
    # stays far below the per-run max_usd.
    defs = _instance(tmp_path / "mine", ROWS, max_usd_total=first["est_usd_sent"] * 1.5)
    before = api_env.stats()["anthropic_http_requests"]
    result = materialize_selection(defs, instance, ["mine_batches"], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.error is not None
    assert "over max_usd_total" in failure.step_failure_data.error.message
    assert api_env.stats()["anthropic_http_requests"] == before  # nothing sent
    defs = _instance(tmp_path / "mine", ROWS, max_usd_total=first["est_usd_sent"] * 4)
    again = materialization(materialize_selection(defs, instance, ["mine_batches"]), "mine_batches")
    assert again["requests_sent"] == 2 and again["est_usd_sent_before"] == first["est_usd_sent"]
