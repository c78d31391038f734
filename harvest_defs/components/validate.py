"""Load-time checks of a ``ClaudeBatchHarvest``: bad configuration fails ``dg check defs``, not a run.

Each failure is a ``ComponentConfigError`` naming the YAML file and the field: an unknown or ambiguous
source, an id (or partition) column the source lacks, a template naming a missing column (or not valid
Jinja2), an invalid output schema, an unknown model (not in the price table: a typo would otherwise be a
404 per request, hours later, and a budget computed as $0). Columns of a warehouse source that does not
exist yet are checked at run time instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harvest_defs.components.harvest_spec import HarvestSpec
from harvest_defs.components.output_schema import OutputSchema, OutputSchemaError
from harvest_defs.components.shared import ComponentConfigError
from harvest_defs.components.sources import ResolvedSource, SourceError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def resolve_source(component: Any, folder: Path, path: Path) -> ResolvedSource:
    source = component.source
    if source is None:
        raise ComponentConfigError(path, "source", "required: one of files, sql, asset, corpus")
    given = [k for k in ("files", "sql", "asset", "corpus") if getattr(source, k) is not None]
    if len(given) != 1:
        raise ComponentConfigError(
            path, "source", f"exactly one of files, sql, asset, corpus is needed, got {given or 'none'}"
        )
    kind = given[0]
    if kind == "files":
        glob = Path(source.files)
        return ResolvedSource("files", files=str(glob if glob.is_absolute() else folder / glob))
    if kind == "sql":
        return ResolvedSource("sql", sql=source.sql)
    if kind == "asset":
        table = source.table or f"harvest.{source.asset}"
        table = table if "." in table else f"harvest.{table}"
        return ResolvedSource("asset", table=table, asset_key=source.asset)
    corpus = source.corpus or None
    if corpus is not None and not Path(corpus).is_absolute():
        corpus = str(folder / corpus)
    return ResolvedSource("corpus", corpus=corpus)


def _template_columns(component: Any, path: Path) -> set[str]:
    import jinja2
    from jinja2 import meta

    if not component.prompt_template:
        raise ComponentConfigError(
            path, "prompt_template", "required: a Jinja2 template over the row's columns"
        )
    try:
        ast = jinja2.Environment().parse(component.prompt_template)
    except jinja2.TemplateSyntaxError as exc:
        raise ComponentConfigError(path, "prompt_template", f"not valid Jinja2: {exc.message}") from exc
    return set(meta.find_undeclared_variables(ast))


def resolve_spec(component: Any, folder: Path, path: Path, context: Any = None) -> HarvestSpec:
    from harvest_defs.harvest.pricing import claude_model_known, price_table

    if not _NAME.match(component.name):
        raise ComponentConfigError(path, "name", f"{component.name!r}: use lower_snake_case (an asset key)")
    table = component.table or component.name
    if not _NAME.match(table):
        raise ComponentConfigError(path, "table", f"{table!r}: use lower_snake_case (a DuckDB table)")
    if not claude_model_known(component.model):
        known = ", ".join(sorted(price_table().get("claude", {})))
        raise ComponentConfigError(path, "model", f"unknown model {component.model!r}; known: {known}")
    if component.max_tokens < 1:
        raise ComponentConfigError(path, "max_tokens", "must be >= 1")
    for budget in ("max_usd", "max_usd_total"):
        if getattr(component, budget) is not None and getattr(component, budget) < 0:
            raise ComponentConfigError(path, budget, "must be >= 0")
    source = resolve_source(component, folder, path)
    used = _template_columns(component, path)
    schema = None
    if component.output_schema is not None:
        try:
            schema = OutputSchema.parse(component.output_schema)
        except OutputSchemaError as exc:
            raise ComponentConfigError(path, "output_schema", str(exc)) from exc
    partition_column = _partition_column(component, source, path)
    try:
        columns = source.columns()
    except SourceError as exc:
        raise ComponentConfigError(path, "source", str(exc)) from exc
    if source.kind == "sql":
        from harvest_defs.components.load_checks import check_sql, warehouse_columns

        check_sql(source.relation(), path)
        columns = warehouse_columns(f"({source.relation()})", "the query", path, "source.sql")
    elif source.kind == "asset":
        from harvest_defs.components.load_checks import check_upstream, warehouse_columns

        assert source.asset_key is not None
        if context is not None:
            check_upstream(context, source.asset_key, path, "source.asset")
        columns = warehouse_columns(str(source.table), f"table {source.table}", path, "source.asset")
    if columns is not None:
        where = f"the source has {sorted(columns)}"
        if component.id_column not in columns:
            raise ComponentConfigError(path, "id_column", f"no column {component.id_column!r}; {where}")
        missing = sorted(used - set(columns))
        if missing:
            raise ComponentConfigError(path, "prompt_template", f"names missing column(s) {missing}; {where}")
        if partition_column and partition_column not in columns:
            raise ComponentConfigError(path, "partitions.column", f"no column {partition_column!r}; {where}")
    return HarvestSpec(
        name=component.name,
        table=table,
        source=source,
        id_column=component.id_column,
        prompt_template=component.prompt_template,
        model=component.model,
        max_tokens=component.max_tokens,
        system_prompt=component.system_prompt,
        few_shot=tuple((f.input, f.output) for f in component.few_shot or ()),
        temperature=component.temperature,
        output_schema=schema,
        partition_column=partition_column,
        max_usd=component.max_usd,
        max_usd_total=component.max_usd_total,
        deps=(source.asset_key,) if source.asset_key else (),
    )


def _partition_column(component: Any, source: ResolvedSource, path: Path) -> str | None:
    partitions = component.partitions
    if partitions is None:
        return None
    if partitions.folder:
        if source.kind != "corpus":
            raise ComponentConfigError(path, "partitions.folder", "only a corpus source has folders")
        return "collection"  # the snapshot column naming the document's collection folder
    if partitions.column is None:
        raise ComponentConfigError(path, "partitions", "give column: <name> (or folder: true for a corpus)")
    return str(partitions.column)
