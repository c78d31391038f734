"""What ``claude_summaries`` writes for a partition: exactly its current documents, nothing else.

Reconciliation, not accumulation. The snapshot of the partition (``documents``) is the truth; the rows
in ``claude_messages`` tagged with the partition are compared with it by (custom_id, request hash):

- a document whose row is missing, stale (another text) or failed gets its row from the raw results on
  disk (``ClaudeBatchHarvester.stored_rows``) — a new result, or a cache hit after a rename or a revert;
- a document whose request is still in a batch that has not ended keeps its previous row until then;
- a row whose document left the partition (deleted, renamed, moved, collection removed) is hard-deleted
  (dlt ``hard_delete`` on ``_deleted``);
- a prompt refused before sending (over the context window, empty) is a ``success=false`` row.

So the work is proportional to what changed: unchanged documents are neither read nor written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harvest_defs.defs.resources import AnthropicResource, HarvestStoreResource
from harvest_defs.defs.warehouse import CLAUDE_TABLE, partition_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from harvest_defs.harvest.claude import ClaudeBatchHarvester

PROMPT_TEMPLATE = "Summarize this document for a search index.\n\n<document>\n{text}\n</document>"
TRUNCATION_MARK = "\n[… truncated to fit the model's context window]"
DELETED = "_deleted"
PARTITION = "partition_key"
TRUNCATED = "truncated"
# Tags added to the library's claude_messages schema by the Dagster layer (dlt adds the columns).
CLAUDE_HINTS: dict[str, Any] = {
    DELETED: {"data_type": "bool", "hard_delete": True},
    PARTITION: {"data_type": "text", "nullable": True},
    TRUNCATED: {"data_type": "bool", "nullable": True},
}


def build_prompts(
    documents: Sequence[dict[str, Any]], anthropic: AnthropicResource
) -> tuple[list[dict[str, Any]], set[str]]:
    """One prompt per document (``custom_id`` = document id), and the ids whose text was truncated.

    The context-window guard, decided before anything is sent: a document whose prompt cannot fit
    ``context window - max_tokens`` is cut to fit (``oversize="truncate"``, marked in the text and the
    ``truncated`` column) or left whole so validation refuses it as a failure row (``"fail"``).
    """
    from harvest_defs.harvest.claude.settings import CHARS_PER_TOKEN, context_window, estimate_prompt_tokens

    template = anthropic.prompt_template or PROMPT_TEMPLATE
    overhead = estimate_prompt_tokens(template.format(text="") + TRUNCATION_MARK, anthropic.system_prompt)
    budget_tokens = context_window(anthropic.model) - anthropic.max_tokens - overhead
    max_chars = max(0, int(budget_tokens * CHARS_PER_TOKEN * 0.98))
    prompts: list[dict[str, Any]] = []
    truncated: set[str] = set()
    for doc in documents:
        text = doc["text"]
        if len(text) > max_chars and anthropic.oversize == "truncate":
            text = text[:max_chars] + TRUNCATION_MARK
            truncated.add(doc["document_id"])
        prompts.append({"custom_id": doc["document_id"], "text": template.format(text=text)})
    return prompts, truncated


@dataclass
class ClaudeReconcile:
    """What one reconcile did, for the run log and metadata."""

    documents: int = 0
    unchanged: int = 0
    written: int = 0
    deleted: list[str] = field(default_factory=list)
    invalid: int = 0
    in_flight: int = 0
    never_submitted: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    lost_batches: dict[str, str] = field(default_factory=dict)
    touched_batches: set[str] = field(default_factory=set)


def _tag(table: pa.Table, partition: str, truncated: set[str], deleted: bool) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    flags = pc.is_in(table.column("custom_id"), pa.array(sorted(truncated), pa.string()))
    table = table.append_column(PARTITION, pa.repeat(pa.scalar(partition, pa.string()), n))
    table = table.append_column(TRUNCATED, flags)
    return table.append_column(DELETED, pa.repeat(pa.scalar(deleted, pa.bool_()), n))


def _deletions(ids: list[str]) -> pa.Table:
    import pyarrow as pa

    from harvest_defs.harvest.claude.results import CLAUDE_MESSAGES_SCHEMA

    columns = [
        pa.array(ids, pa.string()) if f.name == "custom_id" else pa.nulls(len(ids), f.type)
        for f in CLAUDE_MESSAGES_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=CLAUDE_MESSAGES_SCHEMA)


def reconcile_tables(
    harvester: ClaudeBatchHarvester,
    store: HarvestStoreResource,
    anthropic: AnthropicResource,
    partition: str,
    documents: Sequence[dict[str, Any]],
    outcome: ClaudeReconcile,
) -> Iterator[pa.Table]:
    """Tables that make ``claude_messages``'s rows of ``partition`` equal its current documents.

    The current rows are read first, before the caller takes the warehouse's write lock (a shared lock
    taken inside it would wait on ourselves); the pool serializes writers of the warehouse anyway.
    """
    current = {
        row["custom_id"]: (row["request_hash"], row["success"])
        for row in partition_rows(store, CLAUDE_TABLE, "custom_id", ["request_hash", "success"], partition)
    }
    return _reconcile(harvester, anthropic, partition, documents, outcome, current)


def _reconcile(
    harvester: ClaudeBatchHarvester,
    anthropic: AnthropicResource,
    partition: str,
    documents: Sequence[dict[str, Any]],
    outcome: ClaudeReconcile,
    current: dict[str, tuple[str, bool]],
) -> Iterator[pa.Table]:
    from harvest_defs.harvest.claude.results import invalid_rows
    from harvest_defs.harvest.claude.stored import StoredRowsReport

    prompts, truncated = build_prompts(documents, anthropic)
    prepared = harvester.prepare(
        prompts, anthropic.model, anthropic.max_tokens, anthropic.system_prompt, anthropic.temperature
    )
    outcome.documents = len(documents)
    outcome.truncated = sorted(truncated)
    write = [r for r in prepared.requests if current.get(r.custom_id) != (r.request_hash, True)]
    outcome.unchanged = len(prepared.requests) - len(write)
    report = StoredRowsReport()
    for table in harvester.stored_rows(write, report):
        outcome.written += table.num_rows
        yield _tag(table, partition, truncated, deleted=False)
    outcome.in_flight = len(report.in_flight)
    outcome.never_submitted = sorted(r.custom_id for r in write if r.request_hash in report.missing)
    outcome.lost_batches = report.lost_batches
    outcome.touched_batches = report.collected_batches
    if prepared.invalid:
        outcome.invalid = len(prepared.invalid)
        yield _tag(invalid_rows(prepared.invalid, anthropic.model), partition, truncated, deleted=False)
    wanted = {r.custom_id for r in prepared.requests} | {i.custom_id for i in prepared.invalid}
    outcome.deleted = sorted(cid for cid in current if cid not in wanted)
    if outcome.deleted:
        yield _tag(_deletions(outcome.deleted), partition, set(), deleted=True)
