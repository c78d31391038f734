"""``documents``: one partition = one corpus collection, snapshotted to Parquet under ``HARVEST_HOME``.

The snapshot (not an IO-manager pickle) is what downstream assets read, so a run always summarizes exactly
the documents it recorded, and the file is readable with any tool. The data version is the hash of the
document hashes: unchanged collections report an unchanged version.
"""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg

from harvest_defs.defs.corpus import collection_fingerprint, read_collection
from harvest_defs.defs.metadata import as_metadata
from harvest_defs.defs.resources import HarvestStoreResource

DOCUMENTS_KEY = dg.AssetKey("documents")
SNAPSHOT_COLUMNS = ("document_id", "collection", "source_path", "title", "text", "text_hash")


def snapshot_path(store: HarvestStoreResource, partition_key: str) -> Path:
    return store.documents_dir / f"{partition_key}.parquet"


def write_snapshot(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({column: [row[column] for row in rows] for column in SNAPSHOT_COLUMNS})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)  # readers never see a half-written snapshot


def read_snapshot(store: HarvestStoreResource, partition_key: str) -> list[dict[str, Any]]:
    """The documents recorded by the last ``documents`` materialization of this partition."""
    import pyarrow.parquet as pq

    path = snapshot_path(store, partition_key)
    if not path.exists():
        raise dg.Failure(
            f"No documents snapshot for partition {partition_key!r}: materialize `documents` first.",
        )
    return list(pq.read_table(path).to_pylist())


def build_documents_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="documents",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="harvest",
        kinds={"parquet"},
        description="Corpus documents of one collection (.md/.txt/.jsonl), snapshotted to Parquet.",
    )
    def documents(context: dg.AssetExecutionContext, store: HarvestStoreResource) -> dg.MaterializeResult:
        """A backfill over a range of collections is one run (single-run policy): it only reads files."""
        corpus = store.corpus_path
        counts: dict[str, int] = {}
        fingerprints: dict[str, str] = {}
        hashes: list[str] = []
        previews: list[str] = []
        for collection in context.partition_keys:
            rows = read_collection(corpus, collection)
            write_snapshot(snapshot_path(store, collection), rows)
            counts[collection] = len(rows)
            fingerprints[collection] = collection_fingerprint(corpus, collection)
            hashes.extend(r["text_hash"] for r in rows)
            previews.extend(f"- `{r['document_id']}` {r['title']}" for r in rows[:10])
            context.log.info(f"{len(rows)} documents in collection {collection!r}")
        version = hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()[:16]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version) if len(counts) == 1 else None,
            metadata=as_metadata(
                {
                    "dagster/row_count": sum(counts.values()),
                    "documents_per_collection": dg.MetadataValue.json(counts),
                    "corpus_fingerprints": dg.MetadataValue.json(fingerprints),
                    "snapshots": dg.MetadataValue.path(str(store.documents_dir)),
                    "preview": dg.MetadataValue.md("\n".join(previews[:20]) or "(empty)"),
                }
            ),
        )

    return documents
