"""Voyage inputs as a stream of fixed-size windows (see ``harvest/streaming.py``): bounded memory.

Ids across windows: Voyage's rule was already "the first occurrence wins, later ones are rejected", so
a window simply checks its ids against the ids of earlier windows (SQLite on disk, :class:`SeenIds`): a
plain string repeated later (same text, same generated id) collapses silently, like inside a window; an
explicit id reused later is rejected as a duplicate (logged, never sent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harvest_defs.harvest.streaming import DEFAULT_WINDOW, SeenIds, iter_windows
from harvest_defs.harvest.voyage.packing import PreparedInputs, Rejected, default_embedding_id, prepare_inputs
from harvest_defs.harvest.voyage.settings import VoyageModel

EARLIER = "duplicate id (an earlier input has it)"
log = logging.getLogger("harvest_defs.harvest.voyage")


def prepare_windows(
    texts: Any,
    spec: VoyageModel,
    *,
    truncation: bool,
    strict: bool,
    window: int = DEFAULT_WINDOW,
    scratch_dir: Path | str | None = None,
) -> Iterator[PreparedInputs]:
    """One :class:`PreparedInputs` per input window, ids deduplicated across windows."""
    with SeenIds(scratch_dir) as seen:
        offset = kept_total = rejected_total = 0
        started = time.monotonic()
        for rows in iter_windows(texts, window):
            prepared = prepare_inputs(
                rows, spec, truncation=truncation, strict=strict, position_offset=offset
            )
            offset += len(rows)
            del rows
            earlier = seen.check_and_add(i.embedding_id for i in prepared.inputs)
            if earlier:
                kept = []
                for item in prepared.inputs:
                    if item.embedding_id not in earlier:
                        kept.append(item)
                    elif item.embedding_id != default_embedding_id(item.text_hash):
                        prepared.rejected.append(
                            Rejected(item.embedding_id, -1, "duplicate id (an earlier input)")
                        )
                prepared.inputs = kept
                if strict and prepared.rejected:
                    from harvest_defs.harvest.voyage.packing import InvalidInputsError

                    raise InvalidInputsError(prepared.rejected)
            kept_total += len(prepared.inputs)
            rejected_total += len(prepared.rejected)
            # One line per window so a run over millions of texts shows where it is (Claude does the same).
            log.info(
                "voyage stream: %s texts read in %d window(s), %s to embed or reuse, %s rejected; %.1f s",
                f"{offset:,}",
                -(-offset // window),
                f"{kept_total:,}",
                f"{rejected_total:,}",
                time.monotonic() - started,
            )
            yield prepared
