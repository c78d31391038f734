"""Partitions: one per corpus *collection* (a subfolder of the corpus), held as Dagster dynamic partitions.

Why collections and not dates: a corpus grows by folders of related documents (a product's docs, a year
of reports), and the question a user asks of a backfill is "harvest these collections" — each partition
is a self-contained unit of cost (its own Message Batch) and of retry.

Why dynamic: a folder added or removed must not need a code-location reload. ``corpus_sensor`` adds a
key when a collection appears, and removes it once a removed collection's rows have been cleaned out of
every table (see ``defs/corpus_sensor.py``). Backfills over a range of keys work as with static ones.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg

COLLECTIONS_NAME = "collections"
COLLECTIONS = dg.DynamicPartitionsDefinition(name=COLLECTIONS_NAME)


def collection_partitions() -> dg.DynamicPartitionsDefinition:
    return COLLECTIONS


def partition_filename(partition_key: str, suffix: str) -> str:
    """A file name for a partition's artefact: percent-encoded, so any folder name is a safe file name."""
    return quote(partition_key, safe="") + suffix


def snapshot_file(documents_dir: Path, partition_key: str) -> Path:
    return documents_dir / partition_filename(partition_key, ".parquet")
