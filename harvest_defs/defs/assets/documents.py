"""``documents``: one partition = one corpus collection, snapshotted to Parquet under ``HARVEST_HOME``
(and published to ``HARVEST_STORAGE_URL`` when set, so runs on other machines read the same snapshot).

The snapshot (not an IO-manager pickle) is what downstream assets read, so a run always harvests exactly
the documents it recorded, and the file is readable with any tool. It is the partition's *current corpus*:
downstream tables are reconciled to it (rows of documents no longer in it are deleted). A collection whose
folder is gone gets an empty snapshot, which is how its rows leave every table.

Files that cannot be read are skipped, never fatal: each is logged with its path and reason, listed in
the metadata, and the ``all_files_readable`` check warns.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.partitions import snapshot_file
from harvest_defs.defs.resources import HarvestStoreResource

DOCUMENTS_KEY = dg.AssetKey("documents")
READABLE_CHECK = "all_files_readable"
SNAPSHOT_COLUMNS = ("document_id", "collection", "source_path", "title", "text", "text_hash", "encoding")


def snapshot_path(store: HarvestStoreResource, partition_key: str) -> Path:
    return snapshot_file(store.documents_dir, partition_key)


SNAPSHOT_PREFIX = "documents"
SNAPSHOT_BATCH_ROWS = 10_000  # documents per chunk when a snapshot is streamed (``snapshot_batches``)


def _snapshot_key(path: Path) -> str:
    return f"{SNAPSHOT_PREFIX}/{path.name}"


def publish_snapshot(store: HarvestStoreResource, path: Path) -> None:
    """Copy a written snapshot to object storage (``HARVEST_STORAGE_URL``), where every later run reads
    it: on Kubernetes the submit, collect and index runs each start on an empty disk."""
    objects = store.object_store()
    if objects is not None:
        objects.put(path, _snapshot_key(path))


def fetch_snapshot(store: HarvestStoreResource, path: Path) -> bool:
    """The latest published snapshot at ``path`` (object storage wins: a local copy may be stale);
    without object storage, whatever is on this disk. True when ``path`` exists afterwards."""
    import time

    from harvest_defs.harvest.storage import IncompleteObjectError

    objects = store.object_store()
    if objects is not None:
        for attempt in range(3):  # a re-publish between our read of the marker and of the bytes
            try:
                objects.get(_snapshot_key(path), path)
                break
            except IncompleteObjectError:
                if attempt == 2:
                    raise
                time.sleep(0.5)
    return path.exists()


def sync_snapshots(store: HarvestStoreResource) -> list[Path]:
    """Every partition's snapshot on this disk (fetched from object storage when there is one)."""
    objects = store.object_store()
    if objects is not None:
        for key in objects.keys(SNAPSHOT_PREFIX):
            fetch_snapshot(store, store.documents_dir / Path(key).name)
    folder = store.documents_dir
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def write_snapshot(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(column, pa.string()) for column in SNAPSHOT_COLUMNS])
    table = pa.table({column: [row[column] for row in rows] for column in SNAPSHOT_COLUMNS}, schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)  # readers never see a half-written snapshot


def snapshot_batches(
    store: HarvestStoreResource, partition_key: str, batch_rows: int = SNAPSHOT_BATCH_ROWS
) -> Iterator[list[dict[str, Any]]]:
    """The last ``documents`` snapshot of this partition, ``batch_rows`` documents at a time.

    For consumers that keep only a digest per document (``voyage_rows.current_summaries``): at millions
    of documents their texts are never all in memory at once. A missing snapshot fails at call time.
    """
    path = snapshot_path(store, partition_key)
    if not fetch_snapshot(store, path):
        raise dg.Failure(
            f"No documents snapshot for partition {partition_key!r}: materialize `documents` first.",
        )
    return _parquet_batches(path, batch_rows)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as snapshot:
        for batch in snapshot.iter_batches(batch_size=batch_rows):
            yield batch.to_pylist()


def read_snapshot(store: HarvestStoreResource, partition_key: str) -> list[dict[str, Any]]:
    """The documents recorded by the last ``documents`` materialization of this partition."""
    return [doc for batch in snapshot_batches(store, partition_key) for doc in batch]


def _skipped_markdown(skipped: list[dict[str, str]]) -> str:
    if not skipped:
        return "Every file was read."
    lines = ["| file | reason |", "|---|---|"]
    lines += [f"| `{s['path']}` | {s['reason'].replace('|', '/')} |" for s in skipped[:50]]
    if len(skipped) > 50:
        lines.append(f"| … | {len(skipped) - 50} more |")
    return "\n".join(lines)


def build_documents_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="documents",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="harvest",
        kinds={"parquet"},
        description="Corpus documents of one collection (.md/.txt/.jsonl), snapshotted to Parquet.",
        check_specs=[
            dg.AssetCheckSpec(
                READABLE_CHECK,
                asset="documents",
                description="Warns when files of the collection could not be read (each listed with why).",
            )
        ],
    )
    def documents(context: dg.AssetExecutionContext, store: HarvestStoreResource) -> dg.MaterializeResult:
        """A backfill over a range of collections is one run (single-run policy): it only reads files."""
        from harvest_defs.harvest.corpus import collection_fingerprint, read_collection

        corpus = store.corpus_path
        counts: dict[str, int] = {}
        fingerprints: dict[str, str] = {}
        hashes: list[str] = []
        previews: list[str] = []
        skipped: list[dict[str, str]] = []
        encodings: dict[str, str] = {}
        for collection in context.partition_keys:
            read = read_collection(corpus, collection)
            write_snapshot(snapshot_path(store, collection), read.documents)
            publish_snapshot(store, snapshot_path(store, collection))
            counts[collection] = len(read.documents)
            fingerprints[collection] = collection_fingerprint(corpus, collection)
            hashes.extend(r["text_hash"] for r in read.documents)
            previews.extend(f"- `{r['document_id']}` {r['title']}" for r in read.documents[:10])
            for row in read.documents:
                if row["encoding"] not in ("utf-8", "utf-8-sig"):
                    encodings[row["source_path"]] = row["encoding"]
                    context.log.info(f"{row['source_path']}: not UTF-8, decoded as {row['encoding']}")
            for item in read.skipped:
                context.log.warning(f"skipped {item.path}: {item.reason}")
                skipped.append(item.as_dict())
            context.log.info(
                f"{len(read.documents)} documents in collection {collection!r}, {len(read.skipped)} skipped"
            )
        version = hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()[:16]
        check = dg.AssetCheckResult(
            check_name=READABLE_CHECK,
            passed=not skipped,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "skipped_files": len(skipped),
                "skipped": dg.MetadataValue.md(_skipped_markdown(skipped)),
            },
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version) if len(counts) == 1 else None,
            metadata=as_metadata(
                {
                    "dagster/row_count": sum(counts.values()),
                    "skipped_files": len(skipped),
                    "skipped": dg.MetadataValue.md(_skipped_markdown(skipped)),
                    "documents_per_collection": dg.MetadataValue.json(counts),
                    "corpus_fingerprints": dg.MetadataValue.json(fingerprints),
                    "decoded_encodings": dg.MetadataValue.json(encodings) if encodings else None,
                    "snapshots": dg.MetadataValue.path(str(store.documents_dir)),
                    "preview": dg.MetadataValue.md("\n".join(previews[:20]) or "(empty)"),
                }
            ),
            check_results=[check],
        )

    return documents
