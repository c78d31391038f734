"""Fixtures for the component tests: the shipped code location (``harvest_defs/location/``) loaded the
``dg`` way, with a fresh ``HARVEST_HOME`` and the emulator behind the real SDKs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from harvest_defs.defs.local_run import tick_sensor
from harvest_defs.emulator import EmulatorServer

LOCATION = Path(__file__).resolve().parents[2] / "harvest_defs" / "location"


@pytest.fixture
def harvest_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "harvest_home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    return home


@pytest.fixture
def location_defs(harvest_home: Path, api_env: EmulatorServer) -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=LOCATION)


@pytest.fixture
def instance() -> Any:
    with dg.instance_for_test() as inst:
        yield inst


def sync_partitions(defs: dg.Definitions, instance: dg.DagsterInstance, name: str) -> list[str]:
    """One tick of ``<name>_sensor`` adds the source's partition values (applied as the daemon does)."""
    tick_sensor(defs, instance, f"{name}_sensor", None)
    return sorted(instance.get_dynamic_partitions(f"{name}_partitions"))


def materialization(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    assert events, f"{key} was not materialized"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
