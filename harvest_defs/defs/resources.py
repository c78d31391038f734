"""Dagster resources: API settings (keys only through ``EnvVar``) and where the harvest's files live.

Why resources and not module constants: the same code location runs against the emulator (tests, demo,
``dagster dev`` offline) and the real APIs; only environment variables change. Keys are resolved by
Dagster from the environment at run time, so they never appear in run config, and nothing here puts them
in logs, metadata or exception text (``repr`` of a resource hides them too).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:  # the harvesters import the SDKs; keep them out of code-location loading
    from harvest_defs.defs.warehouse import Warehouse
    from harvest_defs.harvest.backends import BackendSettings
    from harvest_defs.harvest.claude import ClaudeBatchHarvester
    from harvest_defs.harvest.ledger import BatchLedger
    from harvest_defs.harvest.storage import ObjectStore

DEFAULT_CLAUDE_MODEL = "claude-haiku-4-5"
DEFAULT_VOYAGE_MODEL = "voyage-3.5"
DUCKDB_POOL = "harvest_duckdb"
# DuckDB's buffer pool during a warehouse load: the library's LOAD_MEMORY_LIMIT (harvest/pipeline.py), not
# imported so loading the code location stays free of dlt.
WAREHOUSE_MEMORY_LIMIT = "512MB"


def _env_or(value: str | None, name: str) -> str | None:
    """An explicit setting wins; otherwise the environment (read at run time, not at import)."""
    return value or os.environ.get(name) or None


class HarvestStoreResource(dg.ConfigurableResource):
    """The files under ``HARVEST_HOME``: ledger + cache (SQLite), raw results, warehouse and RAG DuckDB.

    ``home=None`` reads ``HARVEST_HOME`` when a run starts (default ``./.harvest``), so one definition
    serves every environment; tests point it at ``tmp_path``.
    """

    home: str | None = Field(default=None, description="Root folder; default $HARVEST_HOME or ./.harvest")
    corpus_dir: str | None = Field(default=None, description="Corpus folder; default the sample corpus")
    backend: str | None = Field(
        default=None, description="'duckdb' (local files) or 'postgres'; default $HARVEST_BACKEND"
    )
    postgres_dsn: str | None = Field(
        default=None, repr=False, description="Set via EnvVar('HARVEST_POSTGRES_DSN'); never logged"
    )
    warehouse_memory_limit: str | None = Field(
        default=None,
        description=(
            "DuckDB memory_limit of warehouse loads (e.g. '2GB'); default $HARVEST_WAREHOUSE_MEMORY_LIMIT "
            "or 512MB; 'default' leaves DuckDB's own (80% of RAM)"
        ),
    )

    def load_memory_limit(self) -> str | None:
        """The DuckDB ``memory_limit`` of a warehouse load; ``None``: DuckDB's default (80% of RAM).

        Bounded by default: every load of the chain and the components declares its merge deduplicated
        (``defs/unique_merge.py``), so DuckDB spills to disk instead of holding the load in memory.
        """
        value = (
            _env_or(self.warehouse_memory_limit, "HARVEST_WAREHOUSE_MEMORY_LIMIT") or WAREHOUSE_MEMORY_LIMIT
        )
        return None if value.strip().lower() == "default" else value

    def backend_settings(self) -> BackendSettings:
        """The backend switch: these fields first, then ``HARVEST_*`` variables (see ``harvest.backends``)."""
        from harvest_defs.harvest.backends import BackendSettings

        return BackendSettings.resolve(self.backend, self.postgres_dsn)

    def ledger(self) -> BatchLedger:
        """The batch ledger of this store's backend (the SQLite file at ``ledger_path`` by default)."""
        from harvest_defs.harvest.backends import open_ledger

        return open_ledger(self.ledger_path, self.backend_settings())

    def warehouse(self) -> Warehouse:
        """The warehouse of this store's backend (``warehouse.duckdb`` by default, else Postgres): what
        every asset loads into and reads from (see ``defs.warehouse``)."""
        from harvest_defs.defs.warehouse import open_warehouse

        return open_warehouse(self)

    def object_store(self) -> ObjectStore | None:
        """Object storage shared by every run (``HARVEST_STORAGE_URL``), or None: local files only."""
        from harvest_defs.harvest.storage import ObjectStore

        url = self.backend_settings().storage_url
        return ObjectStore(url) if url else None

    @property
    def home_path(self) -> Path:
        root = Path(_env_or(self.home, "HARVEST_HOME") or ".harvest")
        root.mkdir(parents=True, exist_ok=True)
        return root

    @property
    def ledger_path(self) -> Path:
        return self.home_path / "ledger.sqlite"

    @property
    def raw_dir(self) -> Path:
        return self.home_path / "raw"

    @property
    def warehouse_path(self) -> Path:
        return self.home_path / "warehouse.duckdb"

    @property
    def rag_path(self) -> Path:
        return self.home_path / "rag.duckdb"

    @property
    def documents_dir(self) -> Path:
        """Parquet snapshots of the ``documents`` asset, one file per partition."""
        return self.home_path / "documents"

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working folders live with the data they describe, not in ``~/.dlt``."""
        return self.home_path / "dlt_pipelines"

    @property
    def corpus_path(self) -> Path:
        from harvest_defs.harvest.corpus import default_corpus_dir

        return Path(_env_or(self.corpus_dir, "HARVEST_CORPUS") or default_corpus_dir())

    @contextmanager
    def duckdb_lock(self, db_path: Path, *, exclusive: bool = True) -> Iterator[None]:
        """Wait for our turn on a DuckDB file instead of failing on its lock.

        DuckDB admits one read-write process *or* many read-only ones per file. The Dagster pool
        ``harvest_duckdb`` already serializes writer steps on a configured instance; this advisory lock
        makes the same guarantee hold everywhere else (ephemeral instances, two ``dagster dev`` runs, the
        CLI): writers take it exclusively, readers shared.
        """
        lock_path = db_path.with_name(db_path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class AnthropicResource(dg.ConfigurableResource):
    """Claude Message Batches settings. ``api_key`` comes from ``EnvVar("ANTHROPIC_API_KEY")``."""

    api_key: str = Field(repr=False, description="Set via EnvVar('ANTHROPIC_API_KEY'); never logged")
    base_url: str | None = Field(default=None, description="Default $ANTHROPIC_BASE_URL, else the real API")
    model: str = DEFAULT_CLAUDE_MODEL
    max_tokens: int = 300
    temperature: float | None = None
    system_prompt: str = (
        "You summarize documents for a search index. Reply with a faithful summary of 2-3 sentences."
    )
    prompt_template: str | None = Field(
        default=None, description="The chain's per-document prompt with a {text} placeholder; None = default"
    )
    oversize: Literal["truncate", "fail"] = Field(
        default="truncate",
        description="A document over the context window: cut to fit (truncated=true) or a failure row",
    )
    poll_interval_seconds: float = Field(default=60.0, description="Sensor interval between polls")
    max_failed_ratio: float = Field(default=0.05, description="Asset check threshold on failed requests")

    def resolved_base_url(self) -> str | None:
        return _env_or(self.base_url, "ANTHROPIC_BASE_URL")

    def harvester(
        self, store: HarvestStoreResource, log: Callable[[str], None] | None = None
    ) -> ClaudeBatchHarvester:
        """A harvester bound to this store's ledger; imports the SDK only now, inside a run.

        ``log`` gets the harvester's progress lines (a run passes ``context.log.info``, so a long submit
        or collect shows its counts in the run log); default: the ``harvest_defs.claude`` logger.
        """
        from harvest_defs.harvest.claude import ClaudeBatchHarvester

        return ClaudeBatchHarvester(
            api_key=self.api_key,
            base_url=self.resolved_base_url(),
            ledger_path=store.ledger(),
            raw_dir=store.raw_dir,
            log=log,
        )


class VoyageResource(dg.ConfigurableResource):
    """Voyage embedding settings. ``api_key`` comes from ``EnvVar("VOYAGE_API_KEY")``."""

    api_key: str = Field(repr=False, description="Set via EnvVar('VOYAGE_API_KEY'); never logged")
    base_url: str | None = Field(default=None, description="Default $VOYAGE_BASE_URL (must end in /v1)")
    model: str = DEFAULT_VOYAGE_MODEL
    dims: int | None = Field(default=None, description="output_dimension; None = the model's default")
    rpm: int | None = Field(default=None, description="Requests per minute; None = Voyage tier-1 default")
    tpm: int | None = Field(default=None, description="Tokens per minute; None = Voyage tier-1 default")
    batch_threshold: int = Field(
        default=10_000, description="Texts per partition at/above which the Batch API (33% off) is used"
    )
    poll_interval_seconds: float = 60.0

    def resolved_base_url(self) -> str | None:
        return _env_or(self.base_url, "VOYAGE_BASE_URL")

    def client_kwargs(self) -> dict[str, Any]:
        """Arguments shared by the real-time and Batch API harvesters."""
        return {"api_key": self.api_key, "base_url": self.resolved_base_url(), "model": self.model}


class RagResource(dg.ConfigurableResource):
    """Passage retrieval settings (issue 15): chunking, contextual retrieval and rerank.

    Chunks are on by default: they cost Voyage tokens only for new or edited passages (content ids).
    Contextual retrieval is off by default: it is one Claude request per chunk (batched, the document
    read from the prompt cache), a real cost on a large corpus.
    """

    chunks: bool = Field(default=True, description="Embed and index document passages (chunk_embeddings)")
    chunk_max_tokens: int = Field(default=300, description="Passage budget in tokens (~4 characters each)")
    chunk_overlap_tokens: int = Field(default=40, description="Overlap between passages of one section")
    contextual: bool | None = Field(
        default=None,
        description=(
            "Claude writes a situating context per chunk (Message Batches, cached); "
            "unset: $HARVEST_RAG_CONTEXTUAL (1/true/on), else off"
        ),
    )
    context_model: str = Field(default="claude-haiku-5-5", description="Model writing the contexts")
    rerank: bool = Field(
        default=True,
        description="Voyage rerank of the fused candidates before answering (rag_answers; real-time API)",
    )
    rerank_model: str = "rerank-2.5"
    rerank_candidates: int = Field(default=30, description="Fused candidates the reranker reads per question")
    rerank_batch_threshold: int = Field(
        default=1000,
        description="rag_answers question sets at/above this size rerank via the Voyage Batch API (0: never)",
    )

    @property
    def contextual_on(self) -> bool:
        """The setting, else the deployment's ``HARVEST_RAG_CONTEXTUAL``: sensor-launched runs use the bound
        resource, so without the variable a deployment could not switch the (paid) step on without code."""
        if self.contextual is not None:
            return self.contextual
        return os.environ.get("HARVEST_RAG_CONTEXTUAL", "").strip().lower() in ("1", "true", "yes", "on")


def default_resources() -> dict[str, Any]:
    """The resources ``Definitions`` binds: keys only as ``EnvVar`` so they never reach run config."""
    from dagster_dlt import DagsterDltResource

    return {
        "store": HarvestStoreResource(),
        "anthropic": AnthropicResource(api_key=dg.EnvVar("ANTHROPIC_API_KEY")),
        "voyage": VoyageResource(api_key=dg.EnvVar("VOYAGE_API_KEY")),
        "rag": RagResource(),
        "dlt": DagsterDltResource(),
    }
