"""The warehouse seam's SQL mapping (assets write DuckDB-flavoured SQL once) and both warehouses on real
tables: the same load through ``store.warehouse().pipeline`` reads back the same through the helpers."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.warehouse import partition_rows, query_rows
from harvest_defs.defs.warehouse_pg import postgres_sql
from harvest_defs.harvest.backends import BackendSettings

SETTINGS = BackendSettings(name="postgres", postgres_dsn="postgresql://x@/db", postgres_schema="t_1")


def test_dataset_names_placeholders_and_percent_are_mapped() -> None:
    sql = (
        "SELECT count(*) FILTER (WHERE text LIKE '5%') FROM harvest.claude_messages c "
        "JOIN harvest_questions.voyage_embeddings q ON q.x = c.harvest "
        "WHERE c.partition_key = ? AND table_schema IN (SELECT 1 FROM information_schema.tables)"
    )
    assert postgres_sql(sql, SETTINGS) == (
        "SELECT count(*) FILTER (WHERE text LIKE '5%%') FROM \"t_1_harvest\".claude_messages c "
        'JOIN "t_1_harvest_questions".voyage_embeddings q ON q.x = c.harvest '
        "WHERE c.partition_key = %s AND table_schema IN (SELECT 1 FROM information_schema.tables)"
    )


NAMES = st.one_of(
    st.sampled_from(["harvest", "harvest_questions", "harvestx", "e", "c"]),
    st.text(alphabet="aehrstv_", min_size=1, max_size=10),
)


@settings(max_examples=40, deadline=None)
@given(NAMES, NAMES)
def test_only_our_datasets_are_renamed(alias: str, column: str) -> None:
    """An alias-qualified column is never mistaken for a dataset, whatever the names."""
    sql = f"SELECT {alias}.{column} FROM harvest.t {alias}"
    mapped = postgres_sql(sql, SETTINGS)
    expected_alias = f'"t_1_{alias}".' if alias == "harvest" or alias.startswith("harvest_") else f"{alias}."
    assert mapped == f'SELECT {expected_alias}{column} FROM "t_1_harvest".t {alias}'


@pytest.mark.parametrize("name", ["duckdb", "postgres"])
def test_a_load_reads_back_the_same_on_both_warehouses(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = request.getfixturevalue("pg_env") if name == "postgres" else None
    store = HarvestStoreResource(
        home=str(tmp_path), backend=name, postgres_dsn=settings.postgres_dsn if settings else None
    )
    warehouse = store.warehouse()
    assert warehouse.columns("harvest.things") == []
    assert partition_rows(store, "harvest.things", "id", [], "p") == []
    rows = [
        {"id": f"d{i}", "partition_key": "p" if i % 2 else "q", "n": i, "embedding": [0.5, i]}
        for i in range(6)
    ]
    resource = dlt.resource(
        rows,
        name="things",
        primary_key="id",
        write_disposition="merge",
        columns={"embedding": {"data_type": "json"}},
    )
    with warehouse.lock(exclusive=True):
        warehouse.pipeline("seam_test").run(resource, **warehouse.run_kwargs())
    names = {c for c, _ in warehouse.columns("harvest.things")}
    assert {"id", "partition_key", "n", "embedding"} <= names
    got = partition_rows(store, "harvest.things", "id", ["n"], "p")
    assert sorted((r["id"], r["n"]) for r in got) == [("d1", 1), ("d3", 3), ("d5", 5)]
    length = warehouse.vector_length("embedding")
    [row] = query_rows(
        store,
        store.warehouse_path,
        f"SELECT count(*) FILTER (WHERE n > ?) AS big, max({length}) AS dim, "
        "(array_agg(id ORDER BY id))[1:2] AS first FROM harvest.things",
        [2],
        needs="harvest.things",
    ) or [{}]
    assert (int(row["big"]), int(row["dim"]), list(row["first"])) == (3, 2, ["d0", "d1"])
