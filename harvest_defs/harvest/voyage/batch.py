"""Voyage Batch API harvester (33% off, ≤12 h): non-blocking ``submit`` / ``poll`` / ``collect``.

Never pays twice:
- each text has a request hash (id, text hash, model, input_type, dimension); the ledger's request journal
  says which are already ``succeeded`` (skipped), ``submitted`` (in flight: resumed) or to send;
- texts to send are sorted by request hash and cut into chunks of ≤ ``max_batch_inputs``; a chunk is
  *reserved* in the ledger before its file is uploaded, the uploaded file id is stored at once (a retry
  reuses it), and the batch id is recorded the moment ``batches.create`` answers. A batch carries its
  chunk's ``request_set_hash`` in its metadata, so a process killed between create and record is
  reconciled on restart by listing batches and adopting the one with that hash — never a second batch;
- ``collect`` streams the output file to ``raw_dir/voyage/<batch_id>.jsonl`` first (atomic rename; reused
  if present), then parses it. ``mark_collected`` is the caller's, after its load succeeded.

One input per JSONL line: the API bills usage per line, so every text's ``total_tokens`` is exact. A
manifest per chunk (``raw_dir/voyage/inputs/``) maps each line's ``custom_id`` back to the caller's id and
text, so any process (a sensor-triggered run) can collect.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from harvest_defs.harvest.backends import open_ledger
from harvest_defs.harvest.hashing import set_hash, stable_hash
from harvest_defs.harvest.ledger import BatchLedger, LedgerBatch
from harvest_defs.harvest.progress import BatchProgress as SharedBatchProgress
from harvest_defs.harvest.progress import download_atomically
from harvest_defs.harvest.storage import raw_mirror
from harvest_defs.harvest.voyage.arrow import decode_base64_vectors, embeddings_table
from harvest_defs.harvest.voyage.client import openai_batch_client, resolve_credentials
from harvest_defs.harvest.voyage.packing import EmbedInput, Rejected, prepare_inputs
from harvest_defs.harvest.voyage.settings import (
    BATCH_COMPLETION_WINDOW,
    BATCH_ENDPOINT,
    BATCH_MAX_INPUTS,
    DEFAULT_MODEL,
    model_spec,
)
from harvest_defs.harvest.voyage.store import VectorStore, persisted

PROVIDER = "voyage"
ENDED_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})
ROWS_PER_TABLE = 5000
logger = logging.getLogger("harvest_defs.harvest.voyage")


@dataclass
class SubmitReport:
    batch_ids: list[str] = field(default_factory=list)
    requests_sent: int = 0  # texts sent in new batches
    requests_cached: int = 0  # already embedded (ledger: succeeded)
    requests_resumed: int = 0  # already in a batch in flight
    invalid: list[Rejected] = field(default_factory=list)  # not sent (e.g. too long, truncation=False)
    estimated_cost_usd: float = 0.0
    new_batch_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchProgress(SharedBatchProgress):
    output_file_id: str | None = None
    error_file_id: str | None = None


DOWNLOAD_ATTEMPTS = 5


def _write_atomic(path: Path, lines: Iterator[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
    os.replace(tmp, path)


class VoyageBatchHarvester:
    """Voyage Batch API with the ledger's resume guarantees (see module docstring)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        *,
        output_dimension: int | None = None,
        input_type: str | None = "document",
        ledger_path: str | Path | BatchLedger,
        raw_dir: str | Path,
        poll_interval: float = 60.0,
        log: Callable[[str], None] | None = None,
        truncation: bool = True,
        max_batch_inputs: int = BATCH_MAX_INPUTS,
        provider: str = PROVIDER,
    ) -> None:
        self._creds = resolve_credentials(api_key, base_url)
        self.model = model
        self.spec = model_spec(model)
        self.dim = self.spec.dimension(output_dimension)
        self.output_dimension = self.spec.request_output_dimension(output_dimension)
        self.input_type = input_type
        self.truncation = truncation
        self.max_batch_inputs = max(1, min(max_batch_inputs, BATCH_MAX_INPUTS))
        self.ledger = open_ledger(ledger_path)  # a path, or a ledger a backend opened
        self.raw_dir = Path(raw_dir) / PROVIDER
        # The ledger namespace of this harvester's batches: each VoyageEmbeddings component instance has
        # its own, so one instance's sensor never collects (or requests runs for) another's batches.
        self.provider = provider
        self.store = VectorStore(raw_dir)
        # Object storage (HARVEST_STORAGE_URL) for runs on other nodes, or none: manifests are published
        # before the create, outputs after their download, so a collect in a fresh pod needs no local disk.
        self.mirror = raw_mirror(raw_dir)
        self.poll_interval = poll_interval
        self.log = log or logger.info
        self._client: Any = None

    def __repr__(self) -> str:
        return f"VoyageBatchHarvester(model={self.model!r}, dim={self.dim}, ledger={self.ledger!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = openai_batch_client(self._creds)
        return self._client

    # --- identities ---------------------------------------------------------------------------------
    def request_hash(self, item: EmbedInput) -> str:
        return stable_hash(
            {
                "api": "voyage/embeddings",
                "id": item.embedding_id,
                "text": item.text_hash,
                "model": self.model,
                "input_type": self.input_type,
                "dim": self.dim,
            }
        )

    def _manifest_path(self, request_set_hash: str, chunk_index: int) -> Path:
        return self.raw_dir / "inputs" / f"{request_set_hash}-{chunk_index}.jsonl"

    # --- submit -------------------------------------------------------------------------------------
    def submit(
        self, texts: Sequence[str | Mapping[str, Any]], partition_key: str | None = None
    ) -> SubmitReport:
        from harvest_defs.harvest.pricing import estimate_voyage_usd

        prepared = prepare_inputs(texts, self.spec, truncation=self.truncation, strict=False)
        report = SubmitReport(invalid=[*prepared.rejected, *prepared.too_long])
        if report.invalid:
            self.log(
                f"{len(report.invalid)} text(s) not sent: {'; '.join(r.reason for r in report.invalid[:5])}"
            )
        by_hash = {self.request_hash(i): i for i in prepared.inputs}
        states = self.ledger.request_states(self.provider, by_hash)
        to_send: list[tuple[str, EmbedInput]] = []
        for h in sorted(by_hash):
            state = states.get(h)
            if state == "succeeded":
                report.requests_cached += 1
            elif state == "submitted":
                report.requests_resumed += 1
            else:
                to_send.append((h, by_hash[h]))
        for row in self.ledger.in_flight(self.provider, partition_key):
            if row.batch_id and report.requests_resumed and row.batch_id not in report.batch_ids:
                report.batch_ids.append(row.batch_id)
        tokens = 0
        for index in range(0, len(to_send), self.max_batch_inputs):
            chunk = to_send[index : index + self.max_batch_inputs]
            batch_id, created = self._submit_chunk(chunk, index // self.max_batch_inputs, partition_key)
            if batch_id not in report.batch_ids:
                report.batch_ids.append(batch_id)
            if created:
                report.new_batch_ids.append(batch_id)
                report.requests_sent += len(chunk)
                tokens += sum(i.tokens for _, i in chunk)
            else:
                report.requests_resumed += len(chunk)
        report.estimated_cost_usd = estimate_voyage_usd(self.model, tokens, batch=True)
        return report

    def _submit_chunk(
        self, chunk: list[tuple[str, EmbedInput]], chunk_index: int, partition_key: str | None
    ) -> tuple[str, bool]:
        """The batch id for this chunk and whether it was created now (False = resumed/adopted)."""
        rsh = set_hash(
            (h for h, _ in chunk), model=self.model, input_type=self.input_type, dim=self.dim, api="voyage"
        )
        row = self.ledger.reserve(
            self.provider,
            rsh,
            chunk_index,
            len(chunk),
            partition_key,
            meta={"model": self.model, "dim": self.dim, "input_type": self.input_type},
        )
        items = [(h, f"t{n}") for n, (h, _) in enumerate(chunk)]
        if row.batch_id:  # created before; the requests journal may have missed it (crash): record again
            self.ledger.record_requests(self.provider, row.batch_id, items)
            return row.batch_id, False
        if not row.fresh:  # a previous run reserved it and did not record a batch id (crash window)
            adopted = self._find_remote_batch(rsh, chunk_index)
            if adopted is not None:
                self.log(f"adopting Voyage batch {adopted} created by an interrupted run")
                self.ledger.record_created(self.provider, rsh, chunk_index, adopted)
                self.ledger.record_requests(self.provider, adopted, items)
                return adopted, False
        file_id = row.meta.get("input_file_id") or self._upload(rsh, chunk_index, chunk)
        self.ledger.update_meta(self.provider, rsh, chunk_index, input_file_id=file_id)
        import openai

        try:
            batch = self.client.batches.create(
                input_file_id=file_id,
                endpoint=BATCH_ENDPOINT,
                completion_window=BATCH_COMPLETION_WINDOW,
                metadata={"request_set_hash": rsh, "chunk_index": str(chunk_index), "source": "harvest_defs"},
                extra_body={"request_params": self._request_params()},
            )
        except openai.BadRequestError:
            self.ledger.abandon(self.provider, rsh, chunk_index)
            raise
        self.ledger.record_created(self.provider, rsh, chunk_index, batch.id, meta={"input_file_id": file_id})
        self.ledger.record_requests(self.provider, batch.id, items)
        self.log(f"created Voyage batch {batch.id} ({len(chunk)} texts)")
        return batch.id, True

    def _request_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "input_type": self.input_type}
        if self.output_dimension is not None:
            params["output_dimension"] = self.output_dimension
        return params

    def _upload(self, rsh: str, chunk_index: int, chunk: list[tuple[str, EmbedInput]]) -> str:
        manifest = self._manifest_path(rsh, chunk_index)
        _write_atomic(
            manifest,
            (
                json.dumps(
                    {
                        "custom_id": f"t{n}",
                        "id": i.embedding_id,
                        "text": i.text,
                        "text_hash": i.text_hash,
                        "request_hash": h,
                    },
                    ensure_ascii=False,
                )
                for n, (h, i) in enumerate(chunk)
            ),
        )
        self.mirror.publish(manifest)  # before the create: a collect on another node maps lines with it
        upload = manifest.with_suffix(".upload.jsonl")
        _write_atomic(
            upload,
            (
                json.dumps({"custom_id": f"t{n}", "body": {"input": [i.send]}}, ensure_ascii=False)
                for n, (_, i) in enumerate(chunk)
            ),
        )
        with open(upload, "rb") as handle:
            uploaded = self.client.files.create(
                file=(f"harvest-{rsh[:16]}-{chunk_index}.jsonl", handle), purpose="batch"
            )
        upload.unlink(missing_ok=True)
        return str(uploaded.id)

    def _find_remote_batch(self, rsh: str, chunk_index: int) -> str | None:
        for batch in self.client.batches.list(limit=100):
            meta = batch.metadata or {}
            if meta.get("request_set_hash") == rsh and str(meta.get("chunk_index", "0")) == str(chunk_index):
                return str(batch.id)
        return None

    # --- poll ---------------------------------------------------------------------------------------
    def poll(self, batch_id: str) -> BatchProgress:
        """Retrieve once; a batch the API no longer knows (404) is marked lost and reported ``lost``."""
        import openai

        try:
            batch = self.client.batches.retrieve(batch_id)
        except openai.NotFoundError:
            reason = f"the Voyage API answered 404 for batch {batch_id} (deleted, or another key)"
            self.ledger.mark_lost(batch_id, reason)
            self.log(reason)
            return BatchProgress(batch_id, "lost", {}, ended=False, lost=True)
        counts_obj = batch.request_counts
        counts = (
            {k: int(v) for k, v in counts_obj.model_dump().items() if isinstance(v, int)}
            if counts_obj
            else {}
        )
        ended = batch.status in ENDED_STATUSES
        if ended:
            self.ledger.mark_ended(batch_id, counts)
        elif counts:
            self.ledger.update_counts(batch_id, counts)
        return BatchProgress(
            batch_id,
            str(batch.status),
            counts,
            ended,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
        )

    def wait(self, batch_ids: Sequence[str], sleep: Callable[[float], None] = time.sleep) -> None:
        """Block until every batch has ended (the dlt resource's blocking mode)."""
        pending = list(dict.fromkeys(batch_ids))
        while pending:
            progress = [self.poll(b) for b in pending]
            for p in progress:
                self.log(f"Voyage batch {p.batch_id}: {p.processing_status} {json.dumps(p.request_counts)}")
            pending = [p.batch_id for p in progress if not (p.ended or p.lost)]
            if pending:
                sleep(self.poll_interval)

    # --- collect ------------------------------------------------------------------------------------
    def _download(self, file_id: str | None, path: Path) -> Path | None:
        """Stream a results file to ``path`` (reused when present).

        The SDK retries a failed request, but not a body cut mid-stream (a dropped connection during a
        large download): that is retried here, so a transient cut never fails the collect.
        """
        if path.exists():
            return path
        if not file_id:
            return None
        import openai

        def fetch(tmp: Path) -> None:
            with self.client.files.with_streaming_response.content(file_id) as response:
                response.stream_to_file(tmp)

        return download_atomically(path, fetch, (openai.APIConnectionError,), DOWNLOAD_ATTEMPTS)

    def _ledger_row(self, batch_id: str) -> LedgerBatch:
        row = self.ledger.get(batch_id)
        if row is None:
            raise KeyError(f"Voyage batch {batch_id} is not in the ledger {self.ledger.path}")
        return row

    def collect(self, batch_id: str) -> Iterator[pa.Table]:
        """Arrow tables of the batch's embeddings; failures go to the ledger as failed (and the log)."""
        row = self._ledger_row(batch_id)
        output = self.raw_dir / f"{batch_id}.jsonl"
        errors = self.raw_dir / f"{batch_id}.errors.jsonl"
        if not self.mirror.fetch(output):  # here already, or downloaded whole by another node's collect
            progress = self.poll(batch_id)
            if not progress.ended:
                raise RuntimeError(f"Voyage batch {batch_id} has not ended ({progress.processing_status})")
            if self._download(progress.error_file_id, errors) is not None:
                self.mirror.publish(errors)
            if self._download(progress.output_file_id, output) is None:
                _write_atomic(output, iter(()))
            self.mirror.publish(output)  # after the errors: a mirrored output means both are there
        else:
            self.mirror.fetch(errors)
        manifest = self._read_manifest(row)
        results: dict[str, tuple[Any, int]] = {}
        failures: dict[str, str] = {}
        for path in (output, errors):
            if path.exists():
                self._parse(path, results, failures)
        # Into the vector store before the caller loads them: a failed load never pays for them again.
        yield from persisted(self._tables(manifest, results), self.store)
        outcomes = [(m["request_hash"], m["custom_id"] in results) for m in manifest]
        self.ledger.record_outcomes(self.provider, outcomes, batch_id)
        failed = [m for m in manifest if m["custom_id"] not in results]
        if failed:
            logger.error(
                "Voyage batch %s: %d text(s) failed (a re-run sends them again): %s",
                batch_id,
                len(failed),
                "; ".join(f"{m['id']}: {failures.get(m['custom_id'], 'no result')}" for m in failed[:20]),
            )

    def _read_manifest(self, row: LedgerBatch) -> list[dict[str, Any]]:
        path = self._manifest_path(row.request_set_hash, row.chunk_index)
        self.mirror.fetch(path)  # written on another node (its own HARVEST_HOME): the same key here
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def _parse(self, path: Path, results: dict[str, tuple[Any, int]], failures: dict[str, str]) -> None:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a cut-off last line: its request counts as failed, re-sent next time
                custom_id = str(record.get("custom_id"))
                response = record.get("response") or {}
                body = response.get("body") if isinstance(response, dict) else None
                if response.get("status_code") == 200 and body and body.get("data"):
                    data = sorted(body["data"], key=lambda d: d.get("index", 0))
                    tokens = int((body.get("usage") or {}).get("total_tokens") or 0)
                    results[custom_id] = (data[0]["embedding"], tokens)
                else:
                    error = record.get("error") or response
                    failures[custom_id] = json.dumps(error)[:300]

    def _tables(
        self, manifest: list[dict[str, Any]], results: dict[str, tuple[Any, int]]
    ) -> Iterator[pa.Table]:
        done = [m for m in manifest if m["custom_id"] in results]
        for start in range(0, len(done), ROWS_PER_TABLE):
            part = done[start : start + ROWS_PER_TABLE]
            raw = [results[m["custom_id"]][0] for m in part]
            if raw and isinstance(raw[0], str):
                vectors = decode_base64_vectors(raw, self.dim)
            else:
                vectors = np.asarray(raw, dtype=np.float32)
                if vectors.shape != (len(part), self.dim):
                    raise ValueError(f"batch vectors have shape {vectors.shape}, expected (n, {self.dim})")
            yield embeddings_table(
                ids=[m["id"] for m in part],
                texts=[m["text"] for m in part],
                text_hashes=[m["text_hash"] for m in part],
                vectors=vectors,
                tokens=[results[m["custom_id"]][1] for m in part],
                model=self.model,
                dim=self.dim,
                input_type=self.input_type,
                processing_time_ms=None,
            )

    def mark_collected(self, batch_id: str) -> None:
        self.ledger.mark_collected(batch_id)
