"""Voyage Batch API from Dagster: collect ended batches, submit the rest, let the sensor come back.

Large partitions go through the Batch API (33% off, up to 12 h). Like the Claude path, no run waits for
a batch: ``summary_embeddings`` (and ``chunk_embeddings``, issue 15) first loads every ended batch of its
partition, then submits the texts that are neither embedded nor in flight, and ends;
``voyage_batch_sensor`` requests it again for the partition when a batch ends. The harvester's ledger
guarantees a restart never creates a second batch.

Each asset has its own ledger namespace (``provider``): a partition's summary batches and passage batches
are polled, collected and marked separately, so one asset never loads (and marks collected) the other's
batch — the sensor routes each namespace to its own asset (``VOYAGE_PROVIDERS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from harvest_defs.defs.batches import newest_first, poll_ended_batches
from harvest_defs.defs.resources import HarvestStoreResource, VoyageResource

VOYAGE_PROVIDER = "voyage"  # summary_embeddings' batches (the name predates passages: kept for ledgers)
CHUNK_PROVIDER = "voyage:chunk_embeddings"  # chunk_embeddings' batches (the components' naming)
RERANK_PROVIDER = "voyage:rerank"  # rag_answers' rerank batches (harvest_defs.rag.rerank_batch)
VOYAGE_PROVIDERS = (VOYAGE_PROVIDER, CHUNK_PROVIDER)  # the chain's embedding namespaces


def batch_harvester(
    voyage: VoyageResource, store: HarvestStoreResource, provider: str = VOYAGE_PROVIDER
) -> Any:
    """The library's non-blocking Voyage Batch API client bound to this store's ledger (SDK imported now)."""
    from harvest_defs.harvest.voyage import VoyageBatchHarvester

    return VoyageBatchHarvester(
        **voyage.client_kwargs(),
        output_dimension=voyage.dims,
        ledger_path=store.ledger(),
        raw_dir=store.raw_dir,
        provider=provider,
    )


def voyage_poller(
    voyage: VoyageResource, store: HarvestStoreResource, provider: str = VOYAGE_PROVIDER
) -> Callable[[str], Any]:
    return batch_harvester(voyage, store, provider).poll


def has_partition_batches(store: HarvestStoreResource, provider: str, partition_key: str) -> bool:
    """A batch of ``provider`` for this partition still to poll or collect (no SDK import, no HTTP).

    Such a partition stays in Batch API mode even if it shrank below the threshold since: its batch is
    collected (not paid for again in real time), and the sensor's collect run finds it.
    """
    ledger = store.ledger()
    in_flight = ledger.in_flight(provider, partition_key)
    return bool(in_flight or ledger.ended_uncollected(provider, partition_key))


@dataclass
class BatchStep:
    """What one ``summary_embeddings`` / ``chunk_embeddings`` run did in Batch API mode."""

    collected: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """The run's batch ids for the asset's metadata (None, i.e. left out, when there are none)."""
        import dagster as dg

        return {
            "voyage_batches_collected": dg.MetadataValue.json(self.collected) if self.collected else None,
            "voyage_batches_pending": dg.MetadataValue.json(self.submitted) if self.submitted else None,
        }


def batch_mode_tables(
    texts: Sequence[dict[str, Any]],
    voyage: VoyageResource,
    store: HarvestStoreResource,
    partition_key: str,
    log: Any,
    step: BatchStep,
    *,
    table_name: str = "voyage_embeddings",
    provider: str = VOYAGE_PROVIDER,
) -> Iterator[Any]:
    """Rows free from the caches, then this partition's ended batches (newest first: with the caller's
    first-wins filter the freshest row of an id is kept); then submit what is still missing.

    ``table_name`` is the destination the cache looks in; ``provider`` the asset's ledger namespace.
    """
    from harvest_defs.harvest.voyage.packing import prepare_inputs
    from harvest_defs.harvest.voyage.resource import reuse_cached

    harvester = batch_harvester(voyage, store, provider)
    prepared = prepare_inputs(list(texts), harvester.spec, truncation=True, strict=False)
    todo, reused = reuse_cached(
        prepared.inputs, voyage.model, "document", harvester.dim, harvester.store, table_name
    )
    if reused is not None:
        yield reused
    ended = poll_ended_batches(harvester.ledger, provider, harvester.poll, log, partition_key)
    for batch in newest_first(ended):
        yield from harvester.collect(batch.batch_id)
        step.collected.append(batch.batch_id)
    report = harvester.submit(
        [{"id": i.embedding_id, "text": i.text} for i in todo], partition_key=partition_key
    )
    step.submitted.extend(report.batch_ids)
    if report.batch_ids:
        log.info(
            f"submitted Voyage batch(es) {report.batch_ids}; voyage_batch_sensor collects them when done"
        )


def mark_collected(voyage: VoyageResource, store: HarvestStoreResource, batch_ids: Sequence[str]) -> None:
    """After the load succeeded only (a failed load collects the batches again; the ledger's by batch id)."""
    harvester = batch_harvester(voyage, store)
    for batch_id in batch_ids:
        harvester.mark_collected(batch_id)
