"""Claude prompts as a stream of fixed-size windows: validate, dedupe, submit one window at a time.

Guarantees kept from the whole-list design, and how (see ``harvest/streaming.py`` for the windows):

- **Duplicate custom_ids.** Inside a window, every occurrence of a repeated id is rejected (as before:
  which of two "doc_1" is meant is the caller's call). Across windows the earlier one has already been
  sent by the time the later one is read, so the first occurrence wins and later ones are *skipped*:
  logged with their positions and counted (``duplicates_skipped``), never sent, never given a row (the
  id's row belongs to the first). The set of ids seen is SQLite on disk (:class:`SeenIds`).
- **Same content sent once.** A window's requests are checked against the ledger before sending; the
  content of an earlier window is already ``submitted`` there, so it is resumed, not re-bought. Inside
  a window, ``submit_prepared`` dedupes as before.
- **Crash mid-stream.** Window boundaries are input positions, so a re-run rebuilds the same windows,
  hence the same hash-sorted chunks, and each finds its ledger slot (resume, or adopt the orphan).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest_defs.harvest.claude.prompts import (
    InvalidPrompt,
    PreparedPrompts,
    generated_custom_id,
    invalid_prompts_message,
    prepare_prompts,
)
from harvest_defs.harvest.streaming import DEFAULT_WINDOW, SeenIds, iter_windows

if TYPE_CHECKING:
    from harvest_defs.harvest.claude.harvester import SubmitReport

EARLIER = "duplicate custom_id (an earlier prompt has it)"
LOG_SAMPLE = 20  # invalid / duplicate prompts named per window in the log (the count is always exact)

__all__ = ["DEFAULT_WINDOW", "StreamTotals", "prepare_windows", "sample_message"]


def sample_message(items: list[InvalidPrompt], what: str = "invalid prompt(s), not sent") -> str:
    """Like ``invalid_prompts_message`` but naming at most :data:`LOG_SAMPLE` (a window may hold 50k)."""
    if len(items) <= LOG_SAMPLE:
        return invalid_prompts_message(items).replace("invalid prompt(s), not sent", what, 1)
    shown = "\n".join(f"  - {item.describe()}" for item in items[:LOG_SAMPLE])
    return f"{len(items)} {what}, first {LOG_SAMPLE}:\n{shown}"


def _drop_earlier(prepared: PreparedPrompts, seen: SeenIds) -> None:
    """Remove requests/invalid prompts whose custom_id an earlier window already had (first one wins)."""
    ids = [r.custom_id for r in prepared.requests]
    ids.extend(item.custom_id for item in prepared.invalid)
    earlier = seen.check_and_add(ids)
    if not earlier:
        return
    kept = []
    for request in prepared.requests:
        if request.custom_id not in earlier:
            kept.append(request)
        elif request.custom_id == generated_custom_id(request.request_hash):
            prepared.duplicates_merged += 1  # the very same request as an earlier prompt: one row
        else:
            prepared.duplicates_skipped.append(
                InvalidPrompt(
                    request.index, request.custom_id, "duplicate custom_id (an earlier prompt has it)"
                )
            )
    prepared.requests = kept
    invalid = []
    for item in prepared.invalid:
        if item.custom_id in earlier:
            prepared.duplicates_skipped.append(
                InvalidPrompt(
                    item.index,
                    item.custom_id,
                    f"duplicate custom_id (an earlier prompt has it); {item.reason}",
                )
            )
        else:
            invalid.append(item)
    prepared.invalid = invalid
    prepared.duplicates_skipped.sort(key=lambda item: item.index)


def prepare_windows(
    prompts: Any,
    model: str,
    max_tokens: int,
    system_prompt: str | None,
    temperature: float | None,
    max_bytes_per_batch: int,
    *,
    window: int = DEFAULT_WINDOW,
    scratch_dir: Path | str | None = None,
) -> Iterator[PreparedPrompts]:
    """One :class:`PreparedPrompts` per input window, ids deduplicated across windows (see module doc)."""
    with SeenIds(scratch_dir) as seen:
        offset = 0
        for rows in iter_windows(prompts, window):
            prepared = prepare_prompts(
                rows, model, max_tokens, system_prompt, temperature, max_bytes_per_batch, index_offset=offset
            )
            offset += len(rows)
            del rows
            _drop_earlier(prepared, seen)
            yield prepared


@dataclass
class StreamTotals:
    """Running totals over windows; logs one progress line per window so a 10M run shows where it is."""

    log: Callable[[str], None]
    what: str = "claude stream"
    prompts: int = 0
    windows: int = 0
    sent: int = 0
    cached: int = 0
    resumed: int = 0
    lost: int = 0
    merged: int = 0
    skipped: int = 0
    cost: float = 0.0
    input_tokens: int = 0
    max_output_tokens: int = 0
    batch_ids: dict[str, None] = field(default_factory=dict)
    new_batch_ids: list[str] = field(default_factory=list)
    invalid: list[InvalidPrompt] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add_prepared(self, prepared: PreparedPrompts, window_rows: int) -> None:
        """Count a window's prompts and log (a sample of) its invalid and skipped ones."""
        self.windows += 1
        self.prompts += window_rows
        self.merged += prepared.duplicates_merged
        self.skipped += len(prepared.duplicates_skipped)
        self.invalid.extend(prepared.invalid)
        if prepared.invalid:
            self.log(sample_message(prepared.invalid))
        if prepared.duplicates_skipped:
            self.log(sample_message(prepared.duplicates_skipped, "prompt(s) skipped: custom_id used earlier"))

    def add_report(self, report: SubmitReport) -> None:
        self.sent += report.requests_sent
        self.cached += report.requests_cached
        self.resumed += report.requests_resumed
        self.lost += report.requests_lost
        self.cost += report.estimated_cost_usd
        self.input_tokens += report.estimated_input_tokens
        self.max_output_tokens += report.max_output_tokens
        self.batch_ids.update(dict.fromkeys(report.batch_ids))
        self.new_batch_ids.extend(report.new_batch_ids)

    def progress(self) -> None:
        self.log(
            f"{self.what}: {self.prompts:,} prompts read in {self.windows} window(s), {self.sent:,} sent in "
            f"{len(self.new_batch_ids)} new batch(es), {self.cached:,} cached, {self.resumed:,} resumed, "
            f"{len(self.invalid):,} invalid, {self.skipped:,} duplicate ids skipped; "
            f"{time.monotonic() - self.started:.1f} s"
        )

    def report(self) -> SubmitReport:
        from harvest_defs.harvest.claude.harvester import SubmitReport

        return SubmitReport(
            batch_ids=list(self.batch_ids),
            requests_sent=self.sent,
            requests_cached=self.cached,
            requests_resumed=self.resumed,
            invalid=self.invalid,
            estimated_cost_usd=self.cost,
            duplicates_merged=self.merged,
            new_batch_ids=self.new_batch_ids,
            requests_lost=self.lost,
            duplicates_skipped=self.skipped,
            estimated_input_tokens=self.input_tokens,
            max_output_tokens=self.max_output_tokens,
        )
