"""What every component instance shares: the resources and the executor, as single objects.

Why single objects: ``Definitions.merge`` (which ``load_from_defs_folder`` uses to combine the instances)
accepts a resource key bound twice only when it is the *same* object. So each instance binds
``shared_definitions()`` — one cached set of resources (keys only as ``EnvVar``) — and any number of
instances, in any folder layout, merge cleanly; a scaffolded instance in a new project is complete alone.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg


class ComponentConfigError(ValueError):
    """Bad configuration, raised at load time: names the YAML file and the field (``dg check defs``)."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: attributes.{field}: {message}")


def yaml_path(context: dg.ComponentLoadContext) -> Path:
    return Path(context.path) / "defs.yaml"


@cache
def shared_definitions() -> dg.Definitions:
    """The resources (``store``, ``anthropic``, ``voyage``, ``dlt``) and the in-process executor.

    The executor: one process per run, as ``build_defs`` chose (each step subprocess would re-import the
    code location, while steps mostly wait on APIs or on the single DuckDB writer slot).
    """
    from harvest_defs.defs.resources import default_resources

    return dg.Definitions(resources=default_resources(), executor=dg.in_process_executor)
