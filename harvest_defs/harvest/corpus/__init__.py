"""The corpus as the harvest sees it: document identity, decoding, and per-file isolation (no Dagster)."""

from harvest_defs.harvest.corpus.ids import ROOT_COLLECTION, DocumentKey, document_id
from harvest_defs.harvest.corpus.reader import (
    CollectionRead,
    SkippedFile,
    collection_fingerprint,
    default_corpus_dir,
    discover_collections,
    read_collection,
    text_hash,
)

__all__ = [
    "ROOT_COLLECTION",
    "CollectionRead",
    "DocumentKey",
    "SkippedFile",
    "collection_fingerprint",
    "default_corpus_dir",
    "discover_collections",
    "document_id",
    "read_collection",
    "text_hash",
]
