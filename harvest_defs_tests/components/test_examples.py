"""The shipped examples end to end on the emulator: submit → sensor → collect, typed columns in DuckDB,
a re-run that sends nothing, a budget that stops a run before it pays, and prompt-cache reads."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import jsonschema
import yaml
from dagster.components.core.component_tree import ComponentTree

from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.components.conftest import LOCATION, materialization, query, sync_partitions

TICKETS_SCHEMA = yaml.safe_load((LOCATION / "ticket_triage" / "defs.yaml").read_text())["attributes"][
    "output_schema"
]


def _submit_and_collect(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, partition: str | None, cursor: str | None
) -> tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult, str | None]:
    submitted = materialize_selection(defs, instance, [f"{name}_batches"], partition)
    tick = tick_sensor(defs, instance, f"{name}_sensor", cursor)
    assert [r.partition_key for r in tick.run_requests] == [partition]
    [collected] = run_requests(defs, instance, tick.run_requests)
    return submitted, collected, tick.cursor


def test_ticket_triage_typed_columns_cache_reads_and_free_rerun(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    assert sync_partitions(location_defs, instance, "ticket_triage") == ["chat", "email"]
    cursor = None
    metas = {}
    for channel in ("chat", "email"):
        submitted, collected, cursor = _submit_and_collect(
            location_defs, instance, "ticket_triage", channel, cursor
        )
        assert materialization(submitted, "ticket_triage_batches")["requests_sent"] == 6
        metas[channel] = materialization(collected, "ticket_triage")
    # The shared prefix (rubric + examples) is over the 1,024-token minimum: written once, then read.
    assert materialization(submitted, "ticket_triage_batches")["prefix_cached"] is True
    assert metas["email"]["cache_read_input_tokens"] > 0, metas["email"]
    assert metas["email"]["cache_saving_usd"] > 0
    assert all(m["requests_succeeded"] == 6 and m["schema_invalid"] == 0 for m in metas.values())

    db = harvest_home / "warehouse.duckdb"
    types = dict(
        query(
            db,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'harvest' AND table_name = 'ticket_triage'",
        )
    )
    assert types["sentiment"] == "VARCHAR" and types["urgency"] == "VARCHAR" and types["key_issues"] == "JSON"
    rows = query(
        db,
        "SELECT custom_id, partition_key, sentiment, key_issues, urgency, success "
        "FROM harvest.ticket_triage ORDER BY custom_id",
    )
    assert len(rows) == 12 and all(r[5] for r in rows)
    for custom_id, partition, sentiment, key_issues, urgency, _ in rows:
        value = {"sentiment": sentiment, "key_issues": json.loads(key_issues), "urgency": urgency}
        jsonschema.validate(value, TICKETS_SCHEMA)  # every typed row is a schema-valid object
        assert partition == ("chat" if custom_id.startswith("T-2") else "email")

    before = api_env.stats()["anthropic_http_requests"]
    again = materialize_selection(location_defs, instance, ["ticket_triage_batches"], "chat")
    meta = materialization(again, "ticket_triage_batches")
    assert meta["requests_sent"] == 0 and meta["requests_to_send"] == 0 and meta["requests_cached"] == 6
    assert api_env.stats()["anthropic_http_requests"] == before  # a re-run sends nothing at all


def test_budget_below_the_estimate_sends_nothing_and_reports_it(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer
) -> None:
    spec_defs = _with_budget(location_defs, "translations", 0.000001)
    result = materialize_selection(spec_defs, instance, ["translations_batches"], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    assert data.error is not None and "over max_usd" in data.error.message
    assert data.user_failure_data is not None
    metadata = {k: v.value for k, v in data.user_failure_data.metadata.items()}
    assert metadata["requests_to_send"] == 6 and metadata["est_usd_upper_bound"] > 0.000001
    assert api_env.stats().get("anthropic_http_requests", 0) == 0  # not one request, not even a list


def test_translations_end_to_end(
    location_defs: dg.Definitions, instance: dg.DagsterInstance, api_env: EmulatorServer, harvest_home: Path
) -> None:
    submitted, collected, _ = _submit_and_collect(location_defs, instance, "translations", None, None)
    sent = materialization(submitted, "translations_batches")
    assert sent["requests_sent"] == 6 and sent["prefix_cached"] is False  # below the cache minimum
    assert sent["est_usd_upper_bound"] <= 0.05
    assert materialization(collected, "translations")["requests_succeeded"] == 6
    rows = query(
        harvest_home / "warehouse.duckdb",
        "SELECT custom_id, response, success FROM harvest.product_translations ORDER BY 1",
    )
    assert [r[0] for r in rows] == [f"P-10{i}" for i in range(6)]
    assert all(r[2] and r[1].strip() for r in rows)


def _with_budget(defs: dg.Definitions, name: str, max_usd: float) -> dg.Definitions:
    """The shipped location with one instance's budget lowered, built from the same YAML."""
    from harvest_defs.components.claude_batch_harvest import ClaudeBatchHarvest, ClaudeBatchHarvestModel

    attributes = yaml.safe_load((LOCATION / name / "defs.yaml").read_text())["attributes"]
    component = ClaudeBatchHarvest(ClaudeBatchHarvestModel.model_validate({**attributes, "max_usd": max_usd}))
    context = ComponentTree.for_test().load_context.for_path(LOCATION / name)
    return component.build_defs(context)
