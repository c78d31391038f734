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

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.parquet as pq

from harvest_defs.harvest.claude import settings
from harvest_defs.harvest.claude.harvester import ClaudeBatchHarvester
from harvest_defs.harvest.claude.prompts import InvalidPromptsError, PreparedPrompts
from harvest_defs.harvest.claude.results import invalid_rows
from harvest_defs.harvest.claude.stored import StoredRowsReport, wanted_table
from harvest_defs.harvest.claude.stream import DEFAULT_WINDOW, StreamTotals, prepare_windows
from harvest_defs.harvest.dedup import MERGE_DISPOSITION, DiskUniqueRows
from harvest_defs.harvest.destination import run_sql_client
from harvest_defs.harvest.ledger import COLLECTED, ENDED
from harvest_defs.harvest.memory import release_memory
from harvest_defs.harvest.streaming import SeenIds, reiterable

TABLE_NAME = "claude_messages"


def claude_message_batches(
    prompts: Any,
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
    window: int = DEFAULT_WINDOW,
) -> Any:
    """A ``claude_messages`` resource (merge on ``custom_id``) yielding Arrow tables of batch results.

    Prompts are strings or mappings with ``text`` and optional ``custom_id``, ``system``, ``max_tokens``,
    ``temperature`` (per-prompt overrides of the arguments), given as a list, any iterable (a generator),
    a pyarrow Table/RecordBatchReader, a Polars DataFrame/LazyFrame or a Parquet path. They are read
    ``window`` at a time (``claude/stream.py``): validated, submitted and spooled to disk window by
    window, so memory does not grow with the input. Blocks while batches process, polling every
    ``poll_interval`` seconds and logging progress; use :class:`ClaudeBatchHarvester` to avoid blocking.

    ``strict=True`` raises one :class:`InvalidPromptsError` before any HTTP request when the source can
    be read twice (list, Table, DataFrame, Parquet); a one-shot iterator is checked window by window, so
    windows before the first bad one are already submitted (and resumed by the next run).

    Requests that already have a successful row in the destination are not sent and not yielded again
    (``merge`` keeps the old row), so a re-run yields only new, failed or never-loaded rows. After a hard
    kill, run ``pipeline.run()`` once if ``pipeline.has_pending_data`` (dlt then loads only the leftover
    package), then run the resource again: it resumes the same batches from the ledger.
    """

    def windows(scratch: Path | None = None) -> Iterator[PreparedPrompts]:
        return prepare_windows(
            prompts,
            model,
            max_tokens,
            system_prompt,
            temperature,
            max_bytes_per_batch,
            window=window,
            scratch_dir=scratch,
        )

    if strict and reiterable(prompts):
        invalid = [item for prepared in windows() for item in prepared.invalid]
        if invalid:
            raise InvalidPromptsError(invalid)
    holder: dict[str, Any] = {}

    def claude_messages() -> Iterator[pa.Table]:
        from dlt.common import logger

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
        table_name = _table_name(holder.get("resource"))
        scratch = harvester.raw_dir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        totals = StreamTotals(logger.info)
        sql_client = run_sql_client()  # once, before any window: harvest/destination.py says why
        with (
            tempfile.TemporaryDirectory(prefix="wanted_", dir=scratch) as spool,
            SeenIds(scratch) as yielded,
        ):
            unique = DiskUniqueRows(yielded)
            spooled: list[Path] = []
            for prepared in windows(scratch):
                if strict and prepared.invalid:
                    raise InvalidPromptsError(prepared.invalid)
                totals.add_prepared(prepared, prepared.rows)
                if prepared.invalid:
                    yield unique(invalid_rows(prepared.invalid, model))
                if prepared.requests:
                    totals.add_report(harvester.submit_prepared(prepared, system_prompt=system_prompt))
                    # Every prompt whose (custom_id, request) is not in the destination yet gets a row:
                    # new results, and cache hits under a new id rebuilt from the raw results on disk.
                    needed = _not_loaded(sql_client, table_name, wanted_table(prepared.requests))
                    if needed.num_rows:
                        path = Path(spool) / f"{len(spooled):06d}.parquet"
                        pq.write_table(needed, path)
                        spooled.append(path)
                totals.progress()
                del prepared
            report = totals.report()
            release_memory()  # the windows are gone: give their pages back before the long wait
            harvester.wait(b for b in report.batch_ids if _needs_poll(harvester, b))
            stored = StoredRowsReport()
            for path in spooled:
                for table in harvester.stored_rows(pq.read_table(path), stored):
                    yield unique(table)
        # Best effort: the destination stays the truth, so a crash before the load only means the next
        # run re-yields these rows from the raw file (free), it never re-buys them.
        for batch_id in report.batch_ids:
            harvester.mark_collected(batch_id)
        release_memory()  # before dlt's load runs DuckDB, which cannot reuse these freed pages
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


def _not_loaded(sql_client: Any, table: str, wanted: pa.Table) -> pa.Table:
    """Rows of ``wanted`` without a successful row (same custom_id and request) in the destination.

    One join per window inside DuckDB ("loaded data is state"), so nothing the size of the destination
    is ever held in Python. ``sql_client``: the run's (``harvest/destination.py``), None = nothing loaded.
    """
    if sql_client is None:
        return wanted
    try:
        with sql_client as client:
            qualified = client.make_qualified_table_name(table)
            con = client.native_connection
            con.register("_harvest_wanted", wanted)
            try:
                return (
                    con.execute(
                        "SELECT w.* FROM _harvest_wanted w ANTI JOIN (SELECT custom_id, request_hash FROM "
                        f"{qualified} WHERE success AND request_hash IS NOT NULL) t "
                        "ON t.custom_id = w.custom_id AND t.request_hash = w.request_hash"
                    )
                    .arrow()
                    .read_all()
                    .cast(wanted.schema)
                )
            finally:
                con.unregister("_harvest_wanted")
    except Exception:  # no pipeline, no destination yet, or no table yet: nothing is loaded
        return wanted


def _needs_poll(harvester: ClaudeBatchHarvester, batch_id: str) -> bool:
    row = harvester.ledger.get(batch_id)
    return row is None or row.status not in (ENDED, COLLECTED)
