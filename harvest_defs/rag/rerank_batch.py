"""Voyage rerank through the Batch API ``/v1/rerank`` (33% off): non-blocking submit / poll / collect.

For large question sets (``rag_answers`` at or above ``RagResource.rerank_batch_threshold`` questions).
Nothing waits for a batch: a run reranks from the ``RerankCache`` what is answered already, *defers* the
questions still to rerank (``DeferredReranker``: their answer prompts are not sent yet) and submits their
rerank requests as batches; the caller's sensor brings it back when one ends, ``collect`` fills the cache,
and the next run builds and sends those questions' prompts.

Never pays twice, as the embedding batches: a batch is *reserved* in the ledger (its request-set hash
over the cache keys) before its file is uploaded, the file id is stored at once, the batch id is recorded
the moment ``batches.create`` answers, and a run killed between create and record adopts the batch it
created (listed by its ``request_set_hash`` metadata). Output files are kept under ``raw_dir``, so a lost
cache file is refilled from them, never asked again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvest_defs.rag.rerank import RerankCache
from harvest_defs.rag.search import Hit

RERANK_PROVIDER = "voyage:rerank"  # the ledger namespace of rerank batches (defs.voyage_batches says it too)
BATCH_MAX_INPUTS = 100_000  # documents per batch (api_contracts.md §3.2: 100K inputs)
MAX_ATTEMPTS = 3  # batches per request set whose lines keep failing, then the questions wait for an edit
logger = logging.getLogger("harvest_defs.rag.rerank_batch")


@dataclass
class DeferredReranker:
    """A ``Reranker`` that never calls the API: cached rankings now, else the request is kept for a batch.

    ``pending`` holds the requests to submit, by cache key; ``deferred`` their questions (whose prompts
    must wait for the ranking).
    """

    cache: RerankCache
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def deferred(self) -> set[str]:
        return {str(request["query"]) for request in self.pending.values()}

    def __call__(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        key = self.cache.key(query, hits, k)
        cached = self.cache.load(key, hits)
        if cached is not None:
            self.cache.hits += 1
            return cached
        self.pending[key] = {"query": query, "documents": [hit.text for hit in hits], "k": k}
        return list(hits[:k])  # the fused order: what the question gets if its rerank is given up


class RerankBatches:
    """Submit, poll and collect rerank batches in ``RERANK_PROVIDER`` of ``ledger`` (see module docstring)."""

    def __init__(
        self,
        cache: RerankCache,
        *,
        ledger: Any,
        raw_dir: str | Path,
        api_key: str | None = None,
        base_url: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from harvest_defs.harvest.voyage import VoyageBatchHarvester

        self.cache = cache
        self.ledger = ledger
        self.dir = Path(raw_dir) / "voyage" / "rerank-batches"
        # Its poll and client are model-agnostic (status, counts and the ledger by batch id): reused, not
        # copied; the embedding model it is built with is never used here.
        self._batches = VoyageBatchHarvester(
            api_key=api_key, base_url=base_url, ledger_path=ledger, raw_dir=raw_dir, provider=RERANK_PROVIDER
        )
        self.log = log or logger.info
        self.exhausted: set[str] = set()  # set by submit: keys given up after MAX_ATTEMPTS batches
        self.given_up_reason: str | None = None  # set by submit with exhausted: why, and which batches

    def poll(self, batch_id: str) -> Any:
        return self._batches.poll(batch_id)

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, pending: dict[str, dict[str, Any]], partition_key: str | None) -> list[str]:
        """Batch ids holding ``pending`` (created now or already): one per ≤100K candidate documents.

        ``exhausted`` then lists the keys whose lines failed in ``MAX_ATTEMPTS`` batches: given up (the
        caller asks their questions in the fused order rather than never).
        """
        self.exhausted.clear()
        self.given_up_reason = None
        from harvest_defs.harvest.hashing import set_hash

        by_k: dict[int, list[str]] = {}
        for key in sorted(pending):
            by_k.setdefault(int(pending[key]["k"]), []).append(key)
        ids: list[str] = []
        reasons: list[str] = []
        for k, keys in sorted(by_k.items()):  # top_k is a batch-wide request parameter
            tried: list[str] = []  # the batches of every attempt, for the give-up reason
            for attempt in range(MAX_ATTEMPTS):
                rsh = set_hash(keys, model=self.cache.model, top_k=k, api="voyage/rerank", attempt=attempt)
                open_ids = []
                for index, chunk in enumerate(self._chunks(keys, pending)):
                    open_ids.append(self._submit_chunk(rsh, index, chunk, pending, k, partition_key))
                    row = self.ledger.find(RERANK_PROVIDER, rsh, index)
                    tried.extend([str(row.batch_id)] if row is not None and row.batch_id else [])
                ids.extend(b for b in open_ids if b is not None)
                # A set already collected (its output kept) refilled the cache; what it still lacks (failed
                # lines) goes in the next attempt's set — a new hash, so a new batch, at most MAX_ATTEMPTS.
                keys = [key for key in keys if not (self.cache.cache_dir / f"{key}.json").exists()]
                if not keys or any(b is not None for b in open_ids):
                    break
            else:
                self.exhausted.update(keys)
                reasons.append(
                    f"{len(keys)} rerank request(s) (top_k {k}) failed in each of {MAX_ATTEMPTS} Voyage "
                    f"rerank batches {tried} (last: {self.failures(tried[-1]) if tried else 'unknown'}): "
                    "given up, their questions are answered in the fused order until the question or its "
                    "candidates change"
                )
                self.log(reasons[-1])
        self.given_up_reason = "; ".join(reasons) or None
        return ids

    @staticmethod
    def _chunks(keys: list[str], pending: dict[str, dict[str, Any]]) -> list[list[str]]:
        chunks: list[list[str]] = [[]]
        size = 0
        for key in keys:
            n = len(pending[key]["documents"])
            if chunks[-1] and size + n > BATCH_MAX_INPUTS:
                chunks.append([])
                size = 0
            chunks[-1].append(key)
            size += n
        return chunks

    def _submit_chunk(
        self,
        rsh: str,
        index: int,
        keys: list[str],
        pending: dict[str, dict[str, Any]],
        k: int,
        partition_key: str | None,
    ) -> str | None:
        """The open batch holding ``keys`` (created now, or before), None if collected already."""
        from harvest_defs.harvest.ledger import COLLECTED

        row = self.ledger.reserve(RERANK_PROVIDER, rsh, index, len(keys), partition_key, meta={"k": k})
        if row.batch_id and row.status == COLLECTED:  # its cache files were lost: refill from the output
            self.collect(str(row.batch_id))
            return None
        if row.batch_id:  # in flight: the sensor brings the caller back when it ends
            return str(row.batch_id)
        manifest = self.dir / "inputs" / f"{rsh}-{index}.json"
        if not row.fresh and (adopted := self._find_remote(rsh, index)) is not None:
            self.log(f"adopting Voyage rerank batch {adopted} created by an interrupted run")
            self.ledger.record_created(RERANK_PROVIDER, rsh, index, adopted)
            return adopted
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(keys), encoding="utf-8")  # line n answers keys[n]
        file_id = row.meta.get("input_file_id") or self._upload(rsh, index, keys, pending)
        self.ledger.update_meta(RERANK_PROVIDER, rsh, index, input_file_id=file_id)
        import openai

        try:
            batch = self._batches.client.batches.create(
                input_file_id=file_id,
                endpoint="/v1/rerank",
                completion_window="12h",
                metadata={"request_set_hash": rsh, "chunk_index": str(index), "source": "harvest_defs"},
                extra_body={"request_params": {"model": self.cache.model, "top_k": k, "truncation": True}},
            )
        except openai.BadRequestError:
            self.ledger.abandon(RERANK_PROVIDER, rsh, index)
            raise
        self.ledger.record_created(RERANK_PROVIDER, rsh, index, batch.id, meta={"input_file_id": file_id})
        self.log(f"created Voyage rerank batch {batch.id} ({len(keys)} questions)")
        return str(batch.id)

    def _upload(self, rsh: str, index: int, keys: list[str], pending: dict[str, dict[str, Any]]) -> str:
        lines = [
            json.dumps(
                {
                    "custom_id": f"r{n}",
                    "body": {"query": pending[key]["query"], "documents": pending[key]["documents"]},
                },
                ensure_ascii=False,
            )
            for n, key in enumerate(keys)
        ]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        uploaded = self._batches.client.files.create(
            file=(f"harvest-rerank-{rsh[:16]}-{index}.jsonl", payload), purpose="batch"
        )
        return str(uploaded.id)

    def _find_remote(self, rsh: str, index: int) -> str | None:
        for batch in self._batches.client.batches.list(limit=100):
            meta = batch.metadata or {}
            if meta.get("request_set_hash") == rsh and str(meta.get("chunk_index", "0")) == str(index):
                return str(batch.id)
        return None

    # --- collect ------------------------------------------------------------------------------------
    def _errors_path(self, batch_id: str) -> Path:
        return self.dir / f"{batch_id}.errors.jsonl"

    def failures(self, batch_id: str) -> str:
        """What a collected batch's error file says, counted by error: "2× 500 Internal Server Error"."""
        path = self._errors_path(batch_id)
        if not path.exists():
            return "no error file kept"
        seen: dict[str, int] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            response, error = record.get("response") or {}, record.get("error") or {}
            if error:  # e.g. batch_expired (api_contracts.md §3.2)
                text = f"{error.get('code', 'error')}: {error.get('message', '')}".strip(": ")
            else:
                text = f"{response.get('status_code', '?')} {response.get('message', '')}".strip()
            seen[text] = seen.get(text, 0) + 1
        if not seen:
            return "no error lines (the batch's results lacked them)"
        return ", ".join(f"{n}× {text}" for text, n in sorted(seen.items(), key=lambda kv: -kv[1]))

    def collect(self, batch_id: str) -> int:
        """Fill the cache from an ended batch's output (downloaded once, kept); returns rankings stored.

        A failed line (in the error file, or a non-200 line) is logged and left out: its question is
        deferred again and sent in the next attempt's batch (at most ``MAX_ATTEMPTS``).
        """
        row = self.ledger.get(batch_id)
        if row is None:
            raise KeyError(f"Voyage rerank batch {batch_id} is not in the ledger")
        output = self.dir / f"{batch_id}.jsonl"
        if not output.exists():
            progress = self.poll(batch_id)
            if not progress.ended:
                raise RuntimeError(
                    f"Voyage rerank batch {batch_id} has not ended ({progress.processing_status})"
                )
            files = self._batches.client.files
            output.parent.mkdir(parents=True, exist_ok=True)
            errors = b"" if not progress.error_file_id else files.content(progress.error_file_id).content
            _write_atomic(self._errors_path(batch_id), errors)  # first: the output marks the collect done
            content = b"" if not progress.output_file_id else files.content(progress.output_file_id).content
            _write_atomic(output, content)
        manifest = self.dir / "inputs" / f"{row.request_set_hash}-{row.chunk_index}.json"
        keys: list[str] = json.loads(manifest.read_text(encoding="utf-8"))
        stored = 0
        for line in output.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            response = record.get("response") or {}
            body = response.get("body") if isinstance(response, dict) else None
            n = int(str(record.get("custom_id", "r-1"))[1:])
            if response.get("status_code") == 200 and body and 0 <= n < len(keys):
                order = [(int(d["index"]), float(d["relevance_score"])) for d in body.get("data") or []]
                self.cache.store(keys[n], order)
                stored += 1
        # Counted against the manifest, not the output: Voyage writes a failed line to the *error* file
        # (api_contracts.md §3.2), so the output only ever lacks it.
        failed = len(keys) - stored
        if failed:
            self.log(f"Voyage rerank batch {batch_id}: {failed} request(s) failed (sent again next run)")
        return stored


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
