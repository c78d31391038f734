"""Partitions: one per corpus *collection* (a subfolder of the corpus).

Why collections and not dates: a corpus grows by folders of related documents (a product's docs, a year
of reports), and the question a user asks of a backfill is "harvest these collections" — each partition
is a self-contained unit of cost (its own Message Batch) and of retry. Collections are read from the folder
when the code location loads; adding a folder and reloading adds a partition.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from harvest_defs.defs.corpus import ROOT_COLLECTION, discover_collections


def collection_partitions(corpus_dir: Path) -> dg.StaticPartitionsDefinition:
    """Static partitions named after the corpus's collections (``root`` if the folder is empty)."""
    return dg.StaticPartitionsDefinition(discover_collections(corpus_dir) or [ROOT_COLLECTION])
