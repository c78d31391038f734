"""``voyage_embeddings_batch``: the seed guide's dlt resource, rebuilt (see the package docstring).

The resource yields Arrow tables with one schema (``arrow.embedding_schema``) into the
``voyage_embeddings`` table, merged on ``embedding_id`` (each id once per load, so dlt skips its own
dedup pass: ``unique.py``); the ``embedding`` column carries the
``x-duckdb-type`` hint so ``create_duckdb_pipeline`` stores it as native ``FLOAT[dim]``.

Modes: ``realtime`` (concurrent, rate-limit aware), ``batch`` (Voyage Batch API, 33% off, blocking wait
with ``poll_interval`` — for scripts; Dagster uses the harvester's non-blocking submit/poll/collect), and
``auto`` (batch at or above ``batch_threshold`` texts still to embed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dlt
import pyarrow as pa

from harvest_defs.harvest.dedup import MERGE_DISPOSITION
from harvest_defs.harvest.memory import release_memory
from harvest_defs.harvest.pipeline import vector_column_hint
from harvest_defs.harvest.streaming import DEFAULT_WINDOW, reiterable
from harvest_defs.harvest.voyage import cache
from harvest_defs.harvest.voyage.arrow import embedding_schema, embeddings_table
from harvest_defs.harvest.voyage.client import resolve_credentials
from harvest_defs.harvest.voyage.packing import EmbedInput, InvalidInputsError, PreparedInputs
from harvest_defs.harvest.voyage.settings import DEFAULT_MODEL, model_spec
from harvest_defs.harvest.voyage.store import VectorStore, persisted
from harvest_defs.harvest.voyage.stream import prepare_windows
from harvest_defs.harvest.voyage.unique import unique_embeddings

TABLE_NAME = "voyage_embeddings"
logger = logging.getLogger("harvest_defs.harvest.voyage")


def embedding_column_hints(dims: int | None, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """dlt column hints that make ``embedding`` a native ``FLOAT[dim]`` (dims None = the model's default)."""
    return {"embedding": vector_column_hint(model_spec(model).dimension(dims))}


def _cached_rows(
    inputs: Sequence[EmbedInput], hits: cache.CacheHits, model: str, dim: int, input_type: str | None
) -> tuple[list[EmbedInput], pa.Table | None]:
    """Split inputs into (to embed, table of rows copied from identical texts already embedded)."""
    todo: list[EmbedInput] = []
    reused: list[EmbedInput] = []
    for item in inputs:
        if item.embedding_id in hits.present:
            continue
        (reused if item.text_hash in hits.vectors else todo).append(item)
    if not reused:
        return todo, None
    vectors = pa.array(
        [hits.vectors[i.text_hash].as_py() for i in reused],
        type=embedding_schema(dim).field("embedding").type,
    )
    table = embeddings_table(
        ids=[i.embedding_id for i in reused],
        texts=[i.text for i in reused],
        text_hashes=[i.text_hash for i in reused],
        vectors=vectors,
        tokens=[0] * len(reused),
        model=model,
        dim=dim,
        input_type=input_type,
        processing_time_ms=0.0,
    )
    return todo, table


def reuse_cached(
    inputs: Sequence[EmbedInput],
    model: str,
    input_type: str | None,
    dim: int,
    store: VectorStore,
    table_name: str = TABLE_NAME,
    destination: cache.Destination | None = None,
) -> tuple[list[EmbedInput], pa.Table | None]:
    """(inputs still to embed, rows rebuilt for free): the destination first, then the vector store.

    An input whose id already holds the same text hash in the destination needs nothing; one whose text
    was embedded before (any id: a rename, a revert, a load that failed after paying) gets that vector.
    Must run inside a dlt pipeline's extract for the destination lookup (else only the store is used).
    A loop over windows passes one ``destination`` for the run (:class:`cache.Destination` says why).
    """
    hits = cache.lookup(inputs, table_name, model, input_type, dim, destination)
    missing = {i.text_hash for i in inputs if i.embedding_id not in hits.present}
    hits.vectors.update(store.lookup(missing - hits.vectors.keys(), model, dim, input_type))
    return _cached_rows(inputs, hits, model, dim, input_type)


def _default_state_dir() -> Path:
    """Ledger and raw results when not given: :func:`harvest_defs.harvest.home.default_home`."""
    from harvest_defs.harvest.home import default_home

    return default_home()


def voyage_embeddings_batch(
    texts: Iterable[str | Mapping[str, Any]],
    model: str = DEFAULT_MODEL,
    input_type: str | None = "document",
    batch_size: int | None = None,
    truncation: bool = True,
    output_dimension: int | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    mode: Literal["auto", "realtime", "batch"] = "auto",
    batch_threshold: int = 50_000,
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrency: int | None = None,
    skip_existing: bool = True,
    ledger_path: str | Path | None = None,
    raw_dir: str | Path | None = None,
    poll_interval: float = 60.0,
    strict: bool = False,
    window: int = DEFAULT_WINDOW,
) -> Any:
    """Embed ``texts`` (strings or ``{"text", "id"}`` dicts) into the ``voyage_embeddings`` table.

    Invalid inputs (empty or non-string text, duplicate ids) are listed together in one error log line
    before any request and the valid rest is embedded; ``strict=True`` raises
    :class:`InvalidInputsError` instead, sending nothing. ``batch_size``
    caps inputs per real-time request (default: the API's 1000, packed by tokens). ``rpm``/``tpm``
    default to Voyage's tier-1 limits for the model. With ``skip_existing`` the destination is checked
    first and texts already embedded with the same settings are not sent again.
    """
    dim = model_spec(model).dimension(output_dimension)
    if mode not in ("auto", "realtime", "batch"):
        raise ValueError(f"mode must be auto, realtime or batch, got {mode!r}")
    tables = embedding_tables(
        texts,
        model,
        input_type,
        batch_size,
        truncation,
        output_dimension,
        api_key,
        base_url,
        mode=mode,
        batch_threshold=batch_threshold,
        rpm=rpm,
        tpm=tpm,
        max_concurrency=max_concurrency,
        skip_existing=skip_existing,
        ledger_path=ledger_path,
        raw_dir=raw_dir,
        poll_interval=poll_interval,
        strict=strict,
        window=window,
    )
    return dlt.resource(
        tables,
        name=TABLE_NAME,
        write_disposition=MERGE_DISPOSITION,  # deduplicated: embedding_tables yields each id once
        primary_key="embedding_id",
        columns=embedding_column_hints(dim, model),
    )


def embedding_tables(
    texts: Iterable[str | Mapping[str, Any]],
    model: str = DEFAULT_MODEL,
    input_type: str | None = "document",
    batch_size: int | None = None,
    truncation: bool = True,
    output_dimension: int | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    mode: Literal["auto", "realtime", "batch"] = "auto",
    batch_threshold: int = 50_000,
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrency: int | None = None,
    skip_existing: bool = True,
    ledger_path: str | Path | None = None,
    raw_dir: str | Path | None = None,
    poll_interval: float = 60.0,
    strict: bool = False,
    window: int = DEFAULT_WINDOW,
    table_name: str = TABLE_NAME,
) -> Iterator[pa.Table]:
    """The tables :func:`voyage_embeddings_batch` yields, for callers that wrap them in their own resource.

    ``table_name``: the destination table the rows go to (its rows with the same id and text hash are
    skipped), e.g. ``chunk_embeddings``.

    Must run inside a dlt pipeline's extract (like the resource) for the destination lookup. ``texts``
    is read ``window`` at a time (any iterable, Arrow, Polars or Parquet: ``harvest/streaming.py``), so
    memory is bounded by the window; progress is logged per window. ``table_name`` is the destination
    table the cache looks in (a component writing its own embeddings table passes that table).

    Each ``embedding_id`` is yielded at most once per call (``unique.py``), so a resource yielding only
    these tables may declare ``harvest.dedup.MERGE_DISPOSITION`` (no dlt dedup pass at load).
    """
    if raw_dir is None:
        raw_dir = _default_state_dir() / "raw"
    yield from unique_embeddings(
        _embedding_tables(
            texts,
            model,
            input_type,
            batch_size,
            truncation,
            output_dimension,
            api_key,
            base_url,
            mode=mode,
            batch_threshold=batch_threshold,
            rpm=rpm,
            tpm=tpm,
            max_concurrency=max_concurrency,
            skip_existing=skip_existing,
            ledger_path=ledger_path,
            raw_dir=raw_dir,
            poll_interval=poll_interval,
            strict=strict,
            window=window,
            table_name=table_name,
        ),
        Path(raw_dir) / "voyage" / "scratch",
    )
    release_memory()  # the extract is over: give freed pages back before dlt's load runs DuckDB


def _embedding_tables(
    texts: Iterable[str | Mapping[str, Any]],
    model: str,
    input_type: str | None,
    batch_size: int | None,
    truncation: bool,
    output_dimension: int | None,
    api_key: str | None,
    base_url: str | None,
    *,
    mode: Literal["auto", "realtime", "batch"],
    batch_threshold: int,
    rpm: int | None,
    tpm: int | None,
    max_concurrency: int | None,
    skip_existing: bool,
    ledger_path: str | Path | None,
    raw_dir: str | Path,
    poll_interval: float,
    strict: bool,
    window: int,
    table_name: str,
) -> Iterator[pa.Table]:
    """:func:`embedding_tables` before the once-per-id filter."""
    spec = model_spec(model)
    dim = spec.dimension(output_dimension)
    if mode not in ("auto", "realtime", "batch"):
        raise ValueError(f"mode must be auto, realtime or batch, got {mode!r}")
    store = VectorStore(raw_dir)
    scratch = store.root.parent / "scratch"
    if strict and reiterable(texts):  # everything is checked before the first request
        for _ in prepare_windows(texts, spec, truncation=truncation, strict=True, window=window):
            pass
    embedder = None
    batch: _BatchWindows | None = None
    destination = cache.Destination() if skip_existing else None  # before any window is read: see there
    started = time.monotonic()
    read = embedded = reused_rows = 0
    for prepared in prepare_windows(
        texts, spec, truncation=truncation, strict=strict, window=window, scratch_dir=scratch
    ):
        read += len(prepared.inputs) + len(prepared.rejected) + len(prepared.too_long)
        _log_rejected(prepared, model, spec.context_tokens)
        todo = prepared.inputs
        if skip_existing:
            todo, reused = reuse_cached(todo, model, input_type, dim, store, table_name, destination)
            if reused is not None:
                reused_rows += reused.num_rows
                yield reused
        del prepared
        if not todo:
            continue
        # ``auto`` decides per window (a stream's length is unknown up front): a window with at least
        # ``batch_threshold`` texts still to embed goes to the Batch API, submitted now, collected below.
        if mode == "batch" or (mode == "auto" and len(todo) >= batch_threshold):
            if batch is None:
                batch = _BatchWindows(
                    model, input_type, output_dimension, truncation, api_key, base_url, ledger_path, raw_dir
                )
            batch.submit(todo)
            continue
        if embedder is None:
            from harvest_defs.harvest.voyage.realtime import RealtimeEmbedder

            embedder = RealtimeEmbedder(
                resolve_credentials(api_key, base_url),
                model,
                input_type=input_type,
                output_dimension=output_dimension,
                truncation=truncation,
                rpm=rpm,
                tpm=tpm,
                max_concurrency=max_concurrency,
                batch_size=batch_size,
            )
        embedded += len(todo)
        yield from persisted(embedder.embed(todo), store)
        logger.info(
            "voyage %s: %d texts read, %d sent real-time, %d reused from the cache; %.1f s",
            model,
            read,
            embedded,
            reused_rows,
            time.monotonic() - started,
        )
    if embedder is not None:
        r = embedder.report
        logger.info(
            "voyage %s: %d texts embedded in %d requests (%d tokens, %d 429s absorbed, %d failed) in %.1f s",
            model,
            r.texts_embedded,
            r.requests,
            r.tokens,
            r.throttled,
            len(r.failures),
            time.monotonic() - started,
        )
    if batch is not None:
        yield from batch.collect(poll_interval)


def _log_rejected(prepared: PreparedInputs, model: str, context_tokens: int) -> None:
    if prepared.rejected:
        logger.error("%s; the valid rest is embedded", InvalidInputsError(prepared.rejected))
    if prepared.too_long:
        logger.error(
            "%d text(s) longer than %s's context (%d tokens) were not embedded (truncation=False): %s",
            len(prepared.too_long),
            model,
            context_tokens,
            "; ".join(f"{r.embedding_id}: {r.reason}" for r in prepared.too_long[:20]),
        )


class _BatchWindows:
    """Batch mode over a stream: every window is submitted as it is read, then all are waited for once.

    Why not submit-wait-collect per window: a Voyage batch can take hours, and windows must not wait in
    series. Restarts resume from the ledger (the windows, hence the request sets, are the same).
    """

    def __init__(
        self,
        model: str,
        input_type: str | None,
        output_dimension: int | None,
        truncation: bool,
        api_key: str | None,
        base_url: str | None,
        ledger_path: str | Path | None,
        raw_dir: str | Path | None,
    ) -> None:
        from harvest_defs.harvest.voyage.batch import VoyageBatchHarvester

        state = _default_state_dir()
        self.harvester = VoyageBatchHarvester(
            api_key,
            base_url,
            model,
            output_dimension=output_dimension,
            input_type=input_type,
            ledger_path=ledger_path or state / "ledger.sqlite",
            raw_dir=raw_dir or state / "raw",
            truncation=truncation,
        )
        self.batch_ids: dict[str, None] = {}

    def submit(self, todo: Sequence[EmbedInput]) -> None:
        report = self.harvester.submit([{"id": i.embedding_id, "text": i.text} for i in todo])
        self.batch_ids.update(dict.fromkeys(report.batch_ids))

    def collect(self, poll_interval: float) -> Iterator[pa.Table]:
        """Wait for every batch, then collect. Batches collected by an earlier run whose load may not
        have happened are collected again (the raw file is reused; merge on embedding_id makes the
        replay harmless)."""
        from harvest_defs.harvest.voyage.batch import PROVIDER

        harvester = self.harvester
        ended = [b.batch_id for b in harvester.ledger.ended_uncollected(PROVIDER) if b.batch_id]
        batch_ids = list(dict.fromkeys([*self.batch_ids, *ended]))
        harvester.poll_interval = poll_interval
        harvester.wait(batch_ids)
        for batch_id in batch_ids:
            yield from harvester.collect(batch_id)
