"""Raw results and manifests on object storage (``HARVEST_STORAGE_URL``): fsspec URLs, atomic publishes.

Why: on Kubernetes/ECS each run has its own disk, so a batch's request manifest written by the submit run
and the results downloaded by a collect run must live where every later run can read them. The harvesters
keep working on local files (their temp ``HARVEST_HOME``); this module mirrors them: ``publish`` after a
file is complete, ``fetch`` before a file is read when it is not on this machine.

The atomic-write promise, object-storage style: a file is uploaded to a temporary key, copied to its
final key, and only then is ``<key>.complete`` written, holding the size and SHA-256. Readers take an
object only when its marker exists and the bytes they fetched match it; a publish killed at any point
leaves, at worst, an object without a marker, which no reader uses and the next publish replaces. Any
fsspec URL works (``s3://bucket/prefix`` through s3fs, honouring the usual ``AWS_*`` variables including
``AWS_ENDPOINT_URL``; ``gs://``; ``file://`` for tests and single machines).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any, Protocol

import fsspec

from harvest_defs.harvest.backends.settings import BackendSettings

MARKER_SUFFIX = ".complete"


class IncompleteObjectError(RuntimeError):
    """An object whose bytes do not match its completion marker (a torn or foreign write)."""


def _digest(path: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


class ObjectStore:
    """Whole-file put/get under one fsspec URL prefix, with completion markers written last."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        # s3fs would cache listings (another node's publish would stay invisible); local paths need parents.
        defaults = {"s3": {"use_listings_cache": False}, "file": {"auto_mkdir": True}}
        options = {**defaults.get(url.split("://", 1)[0] if "://" in url else "file", {}), **storage_options}
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def _key(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def put(self, local: Path, key: str) -> None:
        """Upload ``local`` to ``key``: temporary key, copy, then the marker (see the module docstring)."""
        size, sha = _digest(local)
        final, tmp = self._key(key), self._key(f"{key}.tmp-{uuid.uuid4().hex}")
        self.fs.put_file(str(local), tmp)
        try:
            self.fs.copy(tmp, final)
        finally:
            self.fs.rm(tmp)
        self.fs.pipe_file(final + MARKER_SUFFIX, json.dumps({"size": size, "sha256": sha}).encode())

    def complete(self, key: str) -> bool:
        """True once ``key`` was fully published (its marker exists)."""
        return bool(self.fs.exists(self._key(key) + MARKER_SUFFIX))

    def get(self, key: str, local: Path) -> bool:
        """Download a complete ``key`` to ``local`` (atomically, via a sibling temp file); False if absent."""
        if not self.complete(key):
            return False
        marker = json.loads(self.fs.cat_file(self._key(key) + MARKER_SUFFIX))
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.part")
        try:
            self.fs.get_file(self._key(key), str(tmp))
            if _digest(tmp) != (marker["size"], marker["sha256"]):
                raise IncompleteObjectError(f"{self.url}/{key} does not match its completion marker")
            tmp.replace(local)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def keys(self, prefix: str) -> list[str]:
        """The complete keys under ``prefix`` (those with a marker), sorted; [] when there are none."""
        base = self._key(prefix).rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self.root + "/"
        return sorted(
            str(path)[: -len(MARKER_SUFFIX)].removeprefix(root)
            for path in found
            if str(path).endswith(MARKER_SUFFIX)
        )


class RawMirror(Protocol):
    """What the harvesters call around their raw files; a no-op without object storage."""

    def publish(self, local: Path) -> None: ...

    def fetch(self, local: Path) -> bool: ...


class LocalOnly:
    """No ``HARVEST_STORAGE_URL``: raw files live only under the local ``HARVEST_HOME`` (the default)."""

    def publish(self, local: Path) -> None:
        del local

    def fetch(self, local: Path) -> bool:
        return local.exists()


class ObjectMirror:
    """Mirror of a local raw folder at ``<url>/raw/...``: keys are paths relative to the raw root."""

    def __init__(self, store: ObjectStore, raw_root: Path) -> None:
        self.store = store
        self.raw_root = Path(raw_root)

    def _key(self, local: Path) -> str:
        return "raw/" + Path(local).relative_to(self.raw_root).as_posix()

    def publish(self, local: Path) -> None:
        if not self.store.complete(self._key(local)):  # write-once content (hash- or id-named files)
            self.store.put(local, self._key(local))

    def fetch(self, local: Path) -> bool:
        """True when ``local`` exists afterwards (already here, or downloaded whole)."""
        return local.exists() or self.store.get(self._key(local), local)


def raw_mirror(raw_root: Path | str, settings: BackendSettings | None = None) -> RawMirror:
    """The mirror for ``raw_root`` chosen by ``HARVEST_STORAGE_URL`` (none set: :class:`LocalOnly`)."""
    settings = settings or BackendSettings.resolve()
    if not settings.storage_url:
        return LocalOnly()
    return ObjectMirror(ObjectStore(settings.storage_url), Path(raw_root))
