"""Voyage Files API (OpenAI style): uploads on disk, batch outputs written lazily on first read.

Contents live in one temporary directory, never in memory, so a 1 GB upload or a 100K-input output file
costs disk, not RAM. Batch output files are registered with a *producer* that writes them on the first
metadata or content request (in a worker thread), so completing a batch is instant and a result nobody
downloads is never generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import string
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from harvest_defs.emulator.anthropic_batch_store import FAULT_PREFIX, quiet_injected_faults
from harvest_defs.emulator.errors import voyage_error
from harvest_defs.emulator.state import EmulatorState

FILE_RETENTION = timedelta(days=30)
LIST_LIMIT_MAX = 10_000
_ALPHABET = string.ascii_letters + string.digits
_COPY_CHUNK = 1 << 20


def new_id(prefix: str) -> str:
    """``file-7vT5…`` / ``batch-…``: the real APIs' prefix plus 24 random base62 characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def rfc3339(epoch: float) -> str:
    """Voyage batch/file timestamps are strings like ``2025-12-01T19:18:23.455349+00:00``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


@dataclass
class StoredFile:
    id: str
    purpose: str
    filename: str
    created: float
    path: Path
    size: int | None = None
    # Writes ``path`` on first use (batch outputs); None for uploads, which exist from the start.
    producer: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def materialize(self) -> None:
        """Make sure the content exists on disk (blocking; call from a worker thread)."""
        with self.lock:
            if self.size is None:
                if self.producer is not None:
                    self.producer()
                self.size = self.path.stat().st_size

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "file",
            "id": self.id,
            "purpose": self.purpose,
            "filename": self.filename,
            "bytes": self.size,
            "created_at": rfc3339(self.created),
            "expires_at": rfc3339(self.created + FILE_RETENTION.total_seconds()),
        }


class FileTooLarge(ValueError):
    pass


def _copy_limited(source: IO[bytes], target: Path, max_bytes: int) -> int:
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise FileTooLarge(f"File is larger than the maximum of {max_bytes} bytes.")
            out.write(chunk)
    return written


class FileStore:
    """Files by id, in creation order; contents under one temporary directory removed on reset/exit."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self._dir: Path | None = None
        self._lock = threading.Lock()

    def directory(self) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="harvest-emulator-voyage-"))
                weakref.finalize(self, shutil.rmtree, self._dir, True)
            return self._dir

    def new_path(self, name: str) -> Path:
        return self.directory() / name

    def clear(self) -> None:
        """Forget every file (emulator reset); batches holding hard links keep nothing either."""
        self.files.clear()
        if self._dir is not None:
            for child in self._dir.iterdir():
                with contextlib.suppress(OSError):
                    child.unlink()

    async def add_upload(self, upload: UploadFile, purpose: str, max_bytes: int) -> StoredFile:
        file_id = new_id("file-")
        path = self.new_path(file_id)
        try:
            size = await asyncio.to_thread(_copy_limited, upload.file, path, max_bytes)
        except FileTooLarge:
            path.unlink(missing_ok=True)
            raise
        stored = StoredFile(file_id, purpose, upload.filename or "upload.jsonl", _now(), path, size)
        self.files[file_id] = stored
        return stored

    def add_lazy(self, purpose: str, filename: str, path: Path, producer: Callable[[], None]) -> StoredFile:
        stored = StoredFile(new_id("file-"), purpose, filename, _now(), path, producer=producer)
        self.files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self.files.get(file_id)

    def delete(self, file_id: str) -> bool:
        stored = self.files.pop(file_id, None)
        if stored is None:
            return False
        stored.path.unlink(missing_ok=True)
        return True


def cut_stream(path: Path) -> Iterator[bytes]:
    """The first half of a results file, then an aborted connection (``results_truncate_rate``).

    The abort is an exception after the partial body, so the client sees a dropped download mid-line, as
    from a real network cut, never a clean but short file.
    """
    quiet_injected_faults()
    size = path.stat().st_size
    with path.open("rb") as fh:
        yield fh.read(max(1, size // 2))
    raise ConnectionAbortedError(f"{FAULT_PREFIX}: Voyage results download cut mid-stream")


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Query parameter '{name}' must be an integer.") from None
    if not low <= value <= high:
        raise ValueError(f"Query parameter '{name}' must be between {low} and {high}.")
    return value


def page(items: list[Any], after: str | None, limit: int, key: Callable[[Any], str]) -> dict[str, Any]:
    """OpenAI-style cursor page: the items after the one whose id is ``after``."""
    start = 0
    if after is not None:
        ids = [key(item) for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = items[start : start + limit]
    return {
        "object": "list",
        "data": chunk,
        "first_id": key(chunk[0]) if chunk else None,
        "last_id": key(chunk[-1]) if chunk else None,
        "has_more": start + limit < len(items),
    }


def file_routes(state: EmulatorState, store: FileStore) -> list[BaseRoute]:
    async def upload(request: Request) -> Response:
        if denied := await state.admit("voyage", request):
            return denied
        max_bytes = state.config.voyage_file_max_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes + 64 * 1024:
            return voyage_error(400, f"File is larger than the maximum of {max_bytes} bytes.")
        try:
            async with request.form() as form:
                purpose, upload_file = form.get("purpose"), form.get("file")
                if purpose != "batch":
                    return voyage_error(
                        400, f"Value '{purpose}' supplied for 'purpose' is not valid: use 'batch'."
                    )
                if not isinstance(upload_file, UploadFile):
                    return voyage_error(400, "Field 'file' is required and must be a file.")
                stored = await store.add_upload(upload_file, "batch", max_bytes)
        except FileTooLarge as exc:
            return voyage_error(400, str(exc))
        except MultiPartException:
            return voyage_error(400, "Expected a multipart/form-data body with 'purpose' and 'file'.")
        state.count("voyage_files_uploaded")
        return JSONResponse(stored.to_json())

    async def list_files(request: Request) -> Response:
        if denied := await state.admit("voyage", request):
            return denied
        try:
            limit = _int_param(request, "limit", LIST_LIMIT_MAX, 1, LIST_LIMIT_MAX)
        except ValueError as exc:
            return voyage_error(400, str(exc))
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            return voyage_error(400, "Query parameter 'order' must be 'asc' or 'desc'.")
        purpose = request.query_params.get("purpose")
        files = [f for f in store.files.values() if purpose is None or f.purpose == purpose]
        if order == "desc":
            files.reverse()
        body = page(files, request.query_params.get("after"), limit, key=lambda f: f.id)
        for stored in body["data"]:
            await asyncio.to_thread(stored.materialize)
        body["data"] = [f.to_json() for f in body["data"]]
        return JSONResponse(body)

    async def lookup(request: Request) -> StoredFile | Response:
        if denied := await state.admit("voyage", request):
            return denied
        stored = store.get(request.path_params["file_id"])
        if stored is None:
            return voyage_error(404, f"File {request.path_params['file_id']} not found.")
        await asyncio.to_thread(stored.materialize)
        return stored

    async def retrieve(request: Request) -> Response:
        found = await lookup(request)
        return found if isinstance(found, Response) else JSONResponse(found.to_json())

    async def content(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        if found.purpose != "batch":
            state.count("voyage_results_downloads")
            if state.chance(state.config.results_truncate_rate):
                state.count("voyage_results_truncated")
                return StreamingResponse(cut_stream(found.path), media_type="application/jsonl")
        return FileResponse(found.path, media_type="application/jsonl", filename=found.filename)

    async def delete(request: Request) -> Response:
        if denied := await state.admit("voyage", request):
            return denied
        file_id = request.path_params["file_id"]
        if not store.delete(file_id):
            return voyage_error(404, f"File {file_id} not found.")
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def bulk_delete(request: Request) -> Response:
        """``POST /v1/files/delete`` with ``{"file_ids": [...]}``: all or nothing.

        Voyage's reference (https://docs.voyageai.com/reference/bulk-delete-files) answers
        ``{"success": bool, "error_file_ids": [...]}``: when any id does not exist nothing is deleted,
        ``success`` is false and ``error_file_ids`` lists the unknown ids.
        """
        if denied := await state.admit("voyage", request):
            return denied
        try:
            body = await request.json()
        except ValueError:
            return voyage_error(400, "Request body must be JSON.")
        ids = body.get("file_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return voyage_error(400, "Field 'file_ids' must be a non-empty list of file ids.")
        missing = [i for i in dict.fromkeys(ids) if store.get(i) is None]
        if missing:
            return JSONResponse({"success": False, "error_file_ids": missing})
        for file_id in dict.fromkeys(ids):
            store.delete(file_id)
        return JSONResponse({"success": True, "error_file_ids": []})

    return [
        Route("/v1/files", upload, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/delete", bulk_delete, methods=["POST"]),
        Route("/v1/files/{file_id}", retrieve, methods=["GET"]),
        Route("/v1/files/{file_id}", delete, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", content, methods=["GET"]),
    ]
