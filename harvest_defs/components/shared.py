"""What every component instance shares: the resources and the executor, as single objects.

Why single objects: ``Definitions.merge`` (which ``load_from_defs_folder`` uses to combine the instances)
accepts a resource key bound twice only when it is the *same* object. So each instance binds
``shared_definitions()`` — one cached set of resources (keys only as ``EnvVar``) — and any number of
instances, in any folder layout, merge cleanly; a scaffolded instance in a new project is complete alone.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg


class ComponentConfigError(ValueError):
    """Bad configuration, raised at load time: names the YAML file and the field (``dg check defs``)."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: attributes.{field}: {message}")


def yaml_path(context: dg.ComponentLoadContext) -> Path:
    return Path(context.path) / "defs.yaml"


def shared_definitions(context: dg.ComponentLoadContext | None = None) -> dg.Definitions:
    """The resources (``store``, ``anthropic``, ``voyage``, ``dlt``) and the in-process executor.

    The executor: one process per run, as ``build_defs`` chose (each step subprocess would re-import the
    code location, while steps mostly wait on APIs or on the single DuckDB writer slot).

    The chain's Claude settings (``model``, ``max_tokens``, ``system_prompt``, ``prompt_template`` of a
    ``preset: corpus_summaries`` instance) live on the ``anthropic`` resource — the chain's assets, its
    sensors and the embedding step all read them there, so the request hashes agree. Every instance of
    the project looks the chain instance up in the component tree and gets the same cached resources for
    the same overrides, so they still merge; the other instances only use the resource's key and URL.
    """
    return _shared(chain_overrides(context))


@cache
def _shared(overrides: tuple[tuple[str, Any], ...]) -> dg.Definitions:
    from harvest_defs.defs.resources import AnthropicResource, default_resources

    resources = default_resources()
    if overrides:
        resources["anthropic"] = AnthropicResource(api_key=dg.EnvVar("ANTHROPIC_API_KEY"), **dict(overrides))
    return dg.Definitions(resources=resources, executor=dg.in_process_executor)


def chain_overrides(context: dg.ComponentLoadContext | None) -> tuple[tuple[str, Any], ...]:
    """The ``anthropic`` settings the project's chain instance sets in YAML (none: the defaults)."""
    if context is None:
        return ()
    from harvest_defs.components.claude_batch_harvest import ClaudeBatchHarvest

    try:
        harvests = context.component_tree.get_all_components(of_type=ClaudeBatchHarvest)
    except Exception:  # a test context without a defs folder: the defaults
        return ()
    found = {h.chain_settings() for h in harvests if h.chain_settings() is not None}
    if len(found) > 1:
        raise ValueError(
            f"more than one `preset: corpus_summaries` instance with different settings: {found}"
        )
    return next(iter(found), None) or ()
