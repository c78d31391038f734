"""``voyage_embeddings_batch``: the seed guide's dlt resource, rebuilt (see the package docstring).

The resource yields Arrow tables with one schema (``arrow.embedding_schema``) into the
``voyage_embeddings`` table, merged on ``embedding_id``; the ``embedding`` column carries the
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

from harvest_defs.harvest.pipeline import vector_column_hint
from harvest_defs.harvest.voyage import cache
from harvest_defs.harvest.voyage.arrow import embedding_schema, embeddings_table
from harvest_defs.harvest.voyage.client import resolve_credentials
from harvest_defs.harvest.voyage.packing import EmbedInput, InvalidInputsError, prepare_inputs
from harvest_defs.harvest.voyage.settings import DEFAULT_MODEL, model_spec

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
) -> Any:
    """Embed ``texts`` (strings or ``{"text", "id"}`` dicts) into the ``voyage_embeddings`` table.

    Invalid inputs (empty or non-string text, duplicate ids) are listed together in one error log line
    before any request and the valid rest is embedded; ``strict=True`` raises
    :class:`InvalidInputsError` instead, sending nothing. ``batch_size``
    caps inputs per real-time request (default: the API's 1000, packed by tokens). ``rpm``/``tpm``
    default to Voyage's tier-1 limits for the model. With ``skip_existing`` the destination is checked
    first and texts already embedded with the same settings are not sent again.
    """
    spec = model_spec(model)
    dim = spec.dimension(output_dimension)
    if mode not in ("auto", "realtime", "batch"):
        raise ValueError(f"mode must be auto, realtime or batch, got {mode!r}")
    items = list(texts)

    def embeddings() -> Iterator[pa.Table]:
        prepared = prepare_inputs(items, spec, truncation=truncation, strict=strict)
        if prepared.rejected:
            logger.error("%s; the valid rest is embedded", InvalidInputsError(prepared.rejected))
        if prepared.too_long:
            logger.error(
                "%d text(s) longer than %s's context (%d tokens) were not embedded (truncation=False): %s",
                len(prepared.too_long),
                model,
                spec.context_tokens,
                "; ".join(f"{r.embedding_id}: {r.reason}" for r in prepared.too_long[:20]),
            )
        todo = prepared.inputs
        if skip_existing:
            hits = cache.lookup(todo, TABLE_NAME, model, input_type, dim)
            todo, reused = _cached_rows(todo, hits, model, dim, input_type)
            if reused is not None:
                yield reused
        if not todo:
            return
        use_batch = mode == "batch" or (mode == "auto" and len(todo) >= batch_threshold)
        if use_batch:
            yield from _batch_mode(
                todo,
                model,
                input_type,
                output_dimension,
                truncation,
                api_key,
                base_url,
                ledger_path,
                raw_dir,
                poll_interval,
            )
        else:
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
            started = time.monotonic()
            yield from embedder.embed(todo)
            r = embedder.report
            logger.info(
                "voyage %s: %d texts embedded in %d requests (%d tokens, %d 429s absorbed, %d failed) "
                "in %.1f s",
                model,
                r.texts_embedded,
                r.requests,
                r.tokens,
                r.throttled,
                len(r.failures),
                time.monotonic() - started,
            )

    return dlt.resource(
        embeddings(),
        name=TABLE_NAME,
        write_disposition="merge",
        primary_key="embedding_id",
        columns=embedding_column_hints(dim, model),
    )


def _batch_mode(
    todo: Sequence[EmbedInput],
    model: str,
    input_type: str | None,
    output_dimension: int | None,
    truncation: bool,
    api_key: str | None,
    base_url: str | None,
    ledger_path: str | Path | None,
    raw_dir: str | Path | None,
    poll_interval: float,
) -> Iterator[pa.Table]:
    """Submit (or resume), wait, collect: blocking, for scripts. Restarts resume from the ledger."""
    from harvest_defs.harvest.voyage.batch import PROVIDER, VoyageBatchHarvester

    state = _default_state_dir()
    harvester = VoyageBatchHarvester(
        api_key,
        base_url,
        model,
        output_dimension=output_dimension,
        input_type=input_type,
        ledger_path=ledger_path or state / "ledger.sqlite",
        raw_dir=raw_dir or state / "raw",
        poll_interval=poll_interval,
        truncation=truncation,
    )
    # Batches collected by an earlier run whose load may not have happened: collect them again (the raw
    # file is reused, merge on embedding_id makes the replay harmless), and mark them collected only when
    # this run's texts are no longer missing from the destination (checked next time via the cache).
    report = harvester.submit([{"id": i.embedding_id, "text": i.text} for i in todo])
    ended = [b.batch_id for b in harvester.ledger.ended_uncollected(PROVIDER) if b.batch_id]
    batch_ids = list(dict.fromkeys([*report.batch_ids, *ended]))
    harvester.wait(batch_ids)
    for batch_id in batch_ids:
        yield from harvester.collect(batch_id)
