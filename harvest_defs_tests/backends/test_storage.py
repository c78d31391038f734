"""Object storage against a real S3 HTTP endpoint (moto's server on loopback, through s3fs/botocore)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.harvest.storage import (
    MARKER_SUFFIX,
    IncompleteObjectError,
    LocalOnly,
    ObjectMirror,
    ObjectStore,
    raw_mirror,
)


def test_put_then_get_round_trips_through_s3(s3_env: str, tmp_path: Path) -> None:
    store = ObjectStore(s3_env)
    local = tmp_path / "a.jsonl"
    local.write_bytes(b'{"x": 1}\n' * 1000)
    assert not store.complete("raw/a.jsonl") and not store.get("raw/a.jsonl", tmp_path / "b.jsonl")
    store.put(local, "raw/a.jsonl")
    assert store.complete("raw/a.jsonl")
    assert store.get("raw/a.jsonl", tmp_path / "got" / "a.jsonl")
    assert (tmp_path / "got" / "a.jsonl").read_bytes() == local.read_bytes()
    keys = [p.rsplit("/", 1)[-1] for p in store.fs.find(store.root)]
    assert sorted(keys) == ["a.jsonl", "a.jsonl" + MARKER_SUFFIX]  # the temporary key is gone


def test_an_object_without_its_marker_is_never_read(s3_env: str, tmp_path: Path) -> None:
    """A publish killed after the copy but before the marker: readers see nothing, not a partial file."""
    store = ObjectStore(s3_env)
    store.fs.pipe_file(f"{store.root}/raw/torn.jsonl", b'{"partial": tr')
    assert not store.get("raw/torn.jsonl", tmp_path / "torn.jsonl")
    assert not (tmp_path / "torn.jsonl").exists()


def test_bytes_that_do_not_match_the_marker_are_refused(s3_env: str, tmp_path: Path) -> None:
    store = ObjectStore(s3_env)
    local = tmp_path / "r.jsonl"
    local.write_bytes(b"complete\n")
    store.put(local, "raw/r.jsonl")
    store.fs.pipe_file(f"{store.root}/raw/r.jsonl", b"overwritten by a torn write")
    with pytest.raises(IncompleteObjectError):
        store.get("raw/r.jsonl", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists() and list(tmp_path.glob(".*.part")) == []


def test_mirror_is_chosen_by_the_storage_url_and_maps_homes(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARVEST_STORAGE_URL", raising=False)
    assert isinstance(raw_mirror(tmp_path), LocalOnly)
    settings = BackendSettings.resolve(storage_url=s3_env)
    node_a, node_b = (
        raw_mirror(tmp_path / "a" / "raw", settings),
        raw_mirror(tmp_path / "b" / "raw", settings),
    )
    assert isinstance(node_a, ObjectMirror)
    written = tmp_path / "a" / "raw" / "claude" / "requests" / "h.parquet"
    written.parent.mkdir(parents=True)
    written.write_bytes(b"manifest")
    node_a.publish(written)
    wanted = tmp_path / "b" / "raw" / "claude" / "requests" / "h.parquet"
    assert node_b.fetch(wanted) and wanted.read_bytes() == b"manifest"
    assert not node_b.fetch(tmp_path / "b" / "raw" / "claude" / "missing.jsonl")


def test_file_urls_work_the_same(tmp_path: Path) -> None:
    store = ObjectStore(f"file://{tmp_path / 'bucket'}")
    local = tmp_path / "x.bin"
    local.write_bytes(b"abc")
    store.put(local, "raw/x.bin")
    assert store.get("raw/x.bin", tmp_path / "y.bin") and (tmp_path / "y.bin").read_bytes() == b"abc"
    marker = json.loads((tmp_path / "bucket" / "raw" / ("x.bin" + MARKER_SUFFIX)).read_text())
    assert marker["size"] == 3


def test_keys_lists_only_complete_objects_under_a_prefix(s3_env: str, tmp_path: Path) -> None:
    """What ``sync_snapshots`` lists: published objects, never a marker-less (torn) one or another prefix."""
    store = ObjectStore(s3_env)
    assert store.keys("documents") == []
    local = tmp_path / "a.parquet"
    local.write_bytes(b"PAR1" * 10)
    store.put(local, "documents/b%2Fc.parquet")
    store.put(local, "documents/a.parquet")
    store.put(local, "raw/x.jsonl")
    store.fs.pipe_file(f"{store.root}/documents/torn.parquet", b"PAR")
    assert store.keys("documents") == ["documents/a.parquet", "documents/b%2Fc.parquet"]
