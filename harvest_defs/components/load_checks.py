"""Load-time checks that look beyond one ``defs.yaml``: SQL syntax, warehouse columns, upstream asset keys.

- A ``sql`` source is parsed with sqlglot (DuckDB dialect): a typo fails ``dg check defs``, not a run.
- The columns of a warehouse source (``sql`` or ``asset``) are read with a ``DESCRIBE`` when the warehouse
  file and its tables exist; when they do not (a fresh checkout, the upstream never materialized) the check
  is deferred to the run, which says so — logged here so ``dg check defs`` shows why it could not check.
  Opening the file read-only can fail while a run writes it: that defers too (loading never waits).
- An upstream asset key (``source.asset``, a ``VoyageEmbeddings``'s ``upstream``, a ``RagIndex``'s
  ``embeddings[n].asset``) must be produced by a component of the same defs folder. Only our own component
  types can say their keys without building their definitions; when the folder holds any other component
  (Python ``defs.py``, dagster-dlt, ...) the key cannot be proven unknown, and the check is skipped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from harvest_defs.components.shared import ComponentConfigError

logger = logging.getLogger("harvest_defs.components")
# Components that only hold other components (listed on their own by the tree).
STRUCTURAL = ("DefsFolderComponent", "ComponentRootComponent", "AppManagedDefinitionsComponent")


def check_sql(sql: str, path: Path) -> None:
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ComponentConfigError(path, "source.sql", f"not valid SQL: {first}") from exc
    if len(statements) != 1 or not isinstance(statements[0], sqlglot.exp.Query):
        raise ComponentConfigError(path, "source.sql", "must be exactly one SELECT query")


def warehouse_path() -> Path:
    """Where runs will read the warehouse (``HarvestStoreResource``'s default: ``$HARVEST_HOME``)."""
    return Path(os.environ.get("HARVEST_HOME") or ".harvest") / "warehouse.duckdb"


def warehouse_columns(relation: str, what: str, path: Path, field: str) -> list[str] | None:
    """Column names of ``relation`` in the warehouse, or None (logged) when they cannot be known yet."""
    db = warehouse_path()
    if not db.exists():
        logger.warning(f"{path}: {field}: {what}: columns checked at run time (no warehouse at {db} yet)")
        return None
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:  # e.g. a run holds the file for writing
        logger.warning(f"{path}: {field}: {what}: columns checked at run time (warehouse busy: {exc})")
        return None
    try:
        return [row[0] for row in con.execute(f"DESCRIBE {relation}").fetchall()]
    except duckdb.CatalogException as exc:
        logger.warning(
            f"{path}: {field}: {what}: columns checked at run time (not in the warehouse yet: {exc})"
        )
        return None
    except duckdb.Error as exc:
        raise ComponentConfigError(path, field, f"{what} fails in the warehouse: {exc}") from exc
    finally:
        con.close()


def produced_keys(context: Any) -> set[str] | None:
    """Every asset key the defs folder's components produce, or None when that cannot be known."""
    import dagster as dg

    try:
        components = context.component_tree.get_all_components(of_type=dg.Component)
    except Exception as exc:  # a test context without a defs folder, or a folder that fails to load elsewhere
        logger.debug(f"upstream asset keys not checked: {exc!r}")
        return None
    keys: set[str] = set()
    pending = list(components)
    while pending:
        component = pending.pop()
        produce = getattr(component, "asset_keys", None)
        if produce is not None:
            keys.update(produce())
        elif type(component).__name__ == "CompositeYamlComponent":  # several documents in one defs.yaml
            pending.extend(component.components)
        elif type(component).__name__ == "PythonFileComponent" and _defines_nothing(component):
            continue
        elif type(component).__name__ not in STRUCTURAL:
            logger.debug(f"upstream asset keys not checked: {type(component).__name__} in the project")
            return None
    return keys


def _defines_nothing(component: Any) -> bool:
    """A Python file of the defs folder that cannot hold definitions (a package's ``__init__.py``, ...)."""
    if getattr(component, "components", None):
        return False
    try:
        return "dagster" not in Path(component.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, AttributeError, TypeError):
        return False


def check_upstream(context: Any, key: str, path: Path, field: str) -> None:
    known = produced_keys(context)
    if known is not None and key not in known:
        raise ComponentConfigError(
            path,
            field,
            f"unknown asset {key!r}: no component of this project produces it; known: {sorted(known)}",
        )


def check_partitioned_upstream(context: Any, upstream: str, path: Path) -> None:
    """``partitions: upstream`` needs an upstream ``ClaudeBatchHarvest`` that has partitions (when known)."""
    from harvest_defs.components.claude_batch_harvest import ClaudeBatchHarvest

    try:
        harvests = context.component_tree.get_all_components(of_type=ClaudeBatchHarvest)
    except Exception:
        return
    for harvest in harvests:
        if (
            harvest.config.preset is None
            and harvest.config.name == upstream
            and harvest.config.partitions is None
        ):
            raise ComponentConfigError(
                path, "partitions", f"{upstream!r} has no partitions: remove `partitions: upstream`"
            )
