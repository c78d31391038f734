"""``deploy/dagster.postgres.yaml`` loads a real instance on Postgres (dagster-postgres migrates it) and a
run recorded by one instance object is seen by another, as the daemon and a run pod would see it."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"


@dg.asset
def tiny() -> int:
    return 1


def test_the_postgres_instance_example_runs_and_shares_runs(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"dagster_{tmp_path.name[-8:].replace('-', '_').lower()}"
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{database}"')
        con.execute(f'CREATE DATABASE "{database}"')
    base, _, query = pg_dsn.partition("?")  # postgresql://postgres:@/postgres?host=<socket dir>
    server = base.rsplit("/", 1)[0].removeprefix("postgresql")
    # +psycopg2: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, whose NOTIFY dagster cannot bind
    monkeypatch.setenv("DAGSTER_PG_URL", f"postgresql+psycopg2{server}/{database}?{query}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as one:
        assert type(one.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([tiny], instance=one)
        assert result.success
    with dg.DagsterInstance.from_config(str(home)) as other:
        assert other.get_run_by_id(result.run_id) is not None
        assert other.get_latest_materialization_event(dg.AssetKey("tiny")) is not None
