"""The active dlt pipeline's SQL client, made once per run: the destination lookups both harvesters do.

Why once per run and not per window: ``pipeline.sql_client()`` resolves dlt's destination configuration,
and dlt keeps each partial resolution's exception on the config object (``config.__exception__``); its
traceback holds the *caller's* frames, and those stay reachable until dlt's extract step ends. Asked for
once per window, every window's inputs (the Voyage ``EmbedInput`` list, the Claude wanted table with its
prompts) stayed alive that long: ~0.5 KB per Voyage text, 939 MB of a 1M-text extract's peak
(``benchmarks/scale_memory.py``). Made before the first window is read, the frames it pins hold no window.
The client is opened (``with client:``) per lookup, as before.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("harvest_defs.harvest")


def active_pipeline() -> Any:
    """The pipeline whose extract is running, or None (no pipeline, or dlt's default one: no destination)."""
    import dlt

    try:
        pipeline = dlt.current.pipeline()
    except Exception:
        return None
    # dlt.current.pipeline() creates a default pipeline when none is active; that one has no destination.
    return pipeline if getattr(pipeline, "destination", None) is not None else None


def run_sql_client() -> Any:
    """The active pipeline's SQL client (not opened), or None when there is none to ask.

    Call it once per run, before the first window is read (the module docstring says why).
    """
    pipeline = active_pipeline()
    if pipeline is None:
        return None
    try:
        return pipeline.sql_client()
    except Exception as exc:  # e.g. a destination without SQL: no destination lookup, as before
        logger.warning("destination lookups unavailable (%s); going on without them", type(exc).__name__)
        return None
