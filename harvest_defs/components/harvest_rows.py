"""What a ``ClaudeBatchHarvest`` collect writes: exactly the source's current rows, with typed columns.

Reconciliation as in ``defs/claude_rows.py`` (the chain's), keyed by ``custom_id`` = the id column:
rows whose (request hash, success) already match are neither read nor written; the others come from the
raw results on disk (``ClaudeBatchHarvester.stored_rows``: new results and cache hits alike); prompts
refused before sending are failure rows; ids no longer in the source are hard-deleted. With an output
schema each response is parsed and validated here: its fields become typed columns, and a response that
does not validate turns its row into a failure (``error_type = output_schema_invalid``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harvest_defs.components.harvest_spec import HarvestSpec
from harvest_defs.components.output_schema import SCHEMA_INVALID
from harvest_defs.defs.claude_rows import CLAUDE_HINTS, _deletions, _tag
from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.defs.warehouse import partition_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from harvest_defs.harvest.claude import ClaudeBatchHarvester


@dataclass
class Outcome:
    """What one reconcile did, for the log and the metadata (filled while dlt consumes the tables)."""

    rows: int = 0
    unchanged: int = 0
    written: int = 0
    succeeded: int = 0
    failed: int = 0
    schema_invalid: int = 0
    in_flight: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write: int = 0
    cache_read: int = 0
    deleted: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    touched_batches: set[str] = field(default_factory=set)


def column_hints(spec: HarvestSpec) -> dict[str, Any]:
    hints = dict(CLAUDE_HINTS)
    if spec.output_schema is not None:
        hints.update(spec.output_schema.column_hints())
    return hints


def _typed(spec: HarvestSpec, table: pa.Table, outcome: Outcome) -> pa.Table:
    """The output schema's columns appended; invalid responses become failure rows (never silent nulls)."""
    import pyarrow as pa

    schema = spec.output_schema
    if schema is None:
        return table
    responses = table.column("response").to_pylist()
    success = table.column("success").to_pylist()
    error = table.column("error").to_pylist()
    error_type = table.column("error_type").to_pylist()
    values: dict[str, list[Any]] = {name: [] for name in schema.columns}
    for i, response in enumerate(responses):
        typed: Mapping[str, Any] | None = None
        if success[i]:
            typed, why = schema.typed_values(response)
            if typed is None:
                success[i], error[i], error_type[i] = False, why, SCHEMA_INVALID
                outcome.schema_invalid += 1
        for name in schema.columns:
            values[name].append(typed.get(name) if typed else None)
    for name, column in (("success", success), ("error", error), ("error_type", error_type)):
        index = table.schema.get_field_index(name)
        table = table.set_column(
            index, table.schema.field(index), pa.array(column, table.schema.field(index).type)
        )
    for name, arrow_type in schema.arrow_types().items():
        table = table.append_column(name, pa.array(values[name], arrow_type))
    return table


def _count(table: pa.Table, outcome: Outcome) -> None:
    import pyarrow.compute as pc

    def total(column: str) -> int:
        return int(pc.sum(table.column(column)).as_py() or 0)

    ok = int(pc.sum(pc.cast(pc.fill_null(table.column("success"), False), "int64")).as_py() or 0)
    outcome.succeeded += ok
    outcome.failed += table.num_rows - ok
    outcome.input_tokens += total("input_tokens")
    outcome.output_tokens += total("output_tokens")
    outcome.cache_write += total("cache_creation_input_tokens")
    outcome.cache_read += total("cache_read_input_tokens")
    if len(outcome.failures) < 10:
        failed = table.filter(pc.invert(pc.fill_null(table.column("success"), False)))
        outcome.failures.extend(failed.select(["custom_id", "error_type", "error"]).slice(0, 10).to_pylist())


def reconcile(
    spec: HarvestSpec,
    harvester: ClaudeBatchHarvester,
    store: HarvestStoreResource,
    partition: str,
    rows: Sequence[Mapping[str, Any]],
    outcome: Outcome,
) -> Iterator[pa.Table]:
    """Tables making the instance's rows of ``partition`` equal ``rows``; current rows read right now.

    Reading the table here, before the caller takes the warehouse's write lock, matters: a shared lock
    taken inside it would wait on ourselves.
    """
    current = {
        r["custom_id"]: (r["request_hash"], r["success"])
        for r in partition_rows(
            store, spec.qualified_table, "custom_id", ["request_hash", "success"], partition
        )
    }
    prepared = spec.prepare(harvester, rows)
    outcome.rows = len(prepared.requests) + len(prepared.invalid)
    return _tables(spec, harvester, partition, prepared, current, outcome)


def _tables(
    spec: HarvestSpec,
    harvester: ClaudeBatchHarvester,
    partition: str,
    prepared: Any,
    current: dict[str, tuple[str, bool]],
    outcome: Outcome,
) -> Iterator[pa.Table]:
    from harvest_defs.harvest.claude.results import invalid_rows
    from harvest_defs.harvest.claude.stored import StoredRowsReport

    write = [r for r in prepared.requests if current.get(r.custom_id) != (r.request_hash, True)]
    outcome.unchanged = len(prepared.requests) - len(write)
    report = StoredRowsReport()
    for table in harvester.stored_rows(write, report):
        table = _typed(spec, table, outcome)
        _count(table, outcome)
        outcome.written += table.num_rows
        yield _tag(table, partition, set(), deleted=False)
    outcome.in_flight = len(report.in_flight)
    outcome.touched_batches = report.collected_batches
    if prepared.invalid:
        table = _with_null_columns(spec, invalid_rows(prepared.invalid, spec.model))
        _count(table, outcome)
        outcome.written += table.num_rows
        yield _tag(table, partition, set(), deleted=False)
    wanted = {r.custom_id for r in prepared.requests} | {i.custom_id for i in prepared.invalid}
    outcome.deleted = sorted(cid for cid in current if cid not in wanted)
    if outcome.deleted:
        yield _tag(_with_null_columns(spec, _deletions(outcome.deleted)), partition, set(), deleted=True)


def _with_null_columns(spec: HarvestSpec, table: pa.Table) -> pa.Table:
    import pyarrow as pa

    if spec.output_schema is None:
        return table
    for name, arrow_type in spec.output_schema.arrow_types().items():
        table = table.append_column(name, pa.nulls(table.num_rows, arrow_type))
    return table
