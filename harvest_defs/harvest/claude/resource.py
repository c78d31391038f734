"""``claude_message_batches``: the seed guide's dlt resource, blocking (submit -> wait -> collect).

Usable exactly as the guide's Quick Start shows. What it adds over the guide's implementation:
- validation up front (``strict=True`` raises one :class:`InvalidPromptsError` before any HTTP; otherwise
  bad prompts become ``success=false`` rows with ``error_type="invalid_request"``);
- the ledger: a re-run (or a restart after SIGKILL) resumes the batches it already paid for;
- the cache, keyed by content: a prompt whose (custom_id, request) already has a successful row in the
  destination is neither sent nor re-yielded (``merge`` on ``custom_id`` keeps the row); one whose
  content already has a result — under another id (a renamed document), or one that never reached the
  destination (a crash between collect and load) — gets its row rebuilt from the raw results on disk,
  never re-bought;
- Arrow tables with one fixed schema (see ``results.CLAUDE_MESSAGES_SCHEMA``).

The ledger and raw results default to ``<pipelines_dir>/<pipeline_name>.harvest/`` (next to dlt's working
folder, not inside it: dropping dlt's local state must not forget what was paid for), or ``./.harvest``
when no pipeline is active.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa

from harvest_defs.harvest.claude import settings
from harvest_defs.harvest.claude.harvester import ClaudeBatchHarvester
from harvest_defs.harvest.claude.prompts import InvalidPromptsError, prepare_prompts
from harvest_defs.harvest.claude.results import invalid_rows
from harvest_defs.harvest.claude.stored import StoredRowsReport
from harvest_defs.harvest.dedup import MERGE_DISPOSITION, UniqueRows
from harvest_defs.harvest.ledger import COLLECTED, ENDED

TABLE_NAME = "claude_messages"


def claude_message_batches(
    prompts: Sequence[Mapping[str, Any] | str],
    model: str,
    max_tokens: int = settings.DEFAULT_MAX_TOKENS,
    system_prompt: str | None = None,
    temperature: float | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    ledger_path: str | Path | None = None,
    raw_dir: str | Path | None = None,
    poll_interval: float = settings.DEFAULT_POLL_INTERVAL,
    max_requests_per_batch: int = settings.MAX_REQUESTS_PER_BATCH,
    max_bytes_per_batch: int = settings.MAX_BYTES_PER_BATCH,
    strict: bool = False,
) -> Any:
    """A ``claude_messages`` resource (merge on ``custom_id``) yielding Arrow tables of batch results.

    Prompts are strings or mappings with ``text`` and optional ``custom_id``, ``system``, ``max_tokens``,
    ``temperature`` (per-prompt overrides of the arguments). Blocks while batches process, polling every
    ``poll_interval`` seconds and logging progress; use :class:`ClaudeBatchHarvester` to avoid blocking.

    Requests that already have a successful row in the destination are not sent and not yielded again
    (``merge`` keeps the old row), so a re-run yields only new, failed or never-loaded rows. After a hard
    kill, run ``pipeline.run()`` once if ``pipeline.has_pending_data`` (dlt then loads only the leftover
    package), then run the resource again: it resumes the same batches from the ledger.
    """
    prepared = prepare_prompts(prompts, model, max_tokens, system_prompt, temperature, max_bytes_per_batch)
    if strict and prepared.invalid:
        raise InvalidPromptsError(prepared.invalid)
    holder: dict[str, Any] = {}

    def claude_messages() -> Iterator[pa.Table]:
        from dlt.common import logger

        unique = UniqueRows()

        home = _harvest_home()
        harvester = ClaudeBatchHarvester(
            api_key,
            base_url,
            ledger_path=ledger_path or home / "ledger.sqlite",
            raw_dir=raw_dir or home / "raw",
            max_requests_per_batch=max_requests_per_batch,
            max_bytes_per_batch=max_bytes_per_batch,
            poll_interval=poll_interval,
            log=logger.info,
        )
        if prepared.invalid:
            from harvest_defs.harvest.claude.prompts import invalid_prompts_message

            logger.warning(invalid_prompts_message(prepared.invalid))
            yield unique(invalid_rows(prepared.invalid, model))
        if not prepared.requests:
            return
        loaded = _loaded_rows(_table_name(holder.get("resource")))
        report = harvester.submit_prepared(prepared, system_prompt=system_prompt)
        # Every prompt whose (custom_id, request) is not in the destination yet gets a row: new results,
        # and cache hits under a new id (a renamed document) rebuilt from the raw results on disk.
        needed = [r for r in prepared.requests if (r.custom_id, r.request_hash) not in loaded]
        harvester.wait(b for b in report.batch_ids if _needs_poll(harvester, b))
        stored = StoredRowsReport()
        for table in harvester.stored_rows(needed, stored):
            yield unique(table)
        # Best effort: the destination stays the truth, so a crash before the load only means the next
        # run re-yields these rows from the raw file (free), it never re-buys them.
        for batch_id in report.batch_ids:
            harvester.mark_collected(batch_id)
        if stored.missing:
            logger.warning(
                f"claude_messages: {len(stored.missing)} request(s) have no result (lost batches: "
                f"{sorted(stored.lost_batches) or 'none'}); `harvest status` lists them"
            )

    resource = dlt.resource(
        claude_messages, name=TABLE_NAME, write_disposition=MERGE_DISPOSITION, primary_key="custom_id"
    )
    holder["resource"] = resource
    return resource


def _harvest_home() -> Path:
    """See :func:`harvest_defs.harvest.home.default_home` (shared with the Voyage harvester)."""
    from harvest_defs.harvest.home import default_home

    return default_home()


def _table_name(resource: Any) -> str:
    name = getattr(resource, "table_name", None)
    return name if isinstance(name, str) and name else TABLE_NAME


def _loaded_rows(table: str) -> set[tuple[str, str]]:
    """(custom_id, request_hash) of successful rows already in the destination ("loaded data is state")."""
    try:
        pipeline = dlt.current.pipeline()
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            rows = client.execute_sql(
                f"SELECT custom_id, request_hash FROM {qualified} WHERE success AND request_hash IS NOT NULL"
            )
    except Exception:  # no pipeline, no destination yet, or no table yet: nothing is loaded
        return set()
    return {(row[0], row[1]) for row in rows or ()}


def _needs_poll(harvester: ClaudeBatchHarvester, batch_id: str) -> bool:
    row = harvester.ledger.get(batch_id)
    return row is None or row.status not in (ENDED, COLLECTED)
