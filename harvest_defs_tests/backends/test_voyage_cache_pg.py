"""On the Postgres warehouse the destination is still the embedding cache: an unchanged text is never sent
again, a renamed id reuses the stored vector, and only a changed text costs a request — with every run in a
fresh ``HARVEST_HOME`` (a pod of its own), so the local vector store cannot be what remembers."""

from __future__ import annotations

from pathlib import Path

import psycopg

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.harvest.backends.pipelines import create_harvest_pipeline, dataset_schema
from harvest_defs.harvest.voyage import voyage_embeddings_batch

DIMS = 256


def _embed(texts: dict[str, str], tmp_path: Path, settings: BackendSettings, pod: str) -> None:
    home = tmp_path / pod
    pipeline = create_harvest_pipeline(
        "voyage_cache_pg", "harvest", pipelines_dir=str(home / "dlt"), settings=settings
    )
    resource = voyage_embeddings_batch(
        texts=[{"id": key, "text": text} for key, text in texts.items()],
        output_dimension=DIMS,
        mode="realtime",
        ledger_path=home / "ledger.sqlite",
        raw_dir=home / "raw",
    )
    pipeline.run(resource, loader_file_format="insert_values")


def _stored(settings: BackendSettings) -> dict[str, int]:
    assert settings.postgres_dsn is not None
    table = f"{dataset_schema('harvest', settings)}.voyage_embeddings"
    with psycopg.connect(settings.postgres_dsn) as con:
        rows = con.execute(f"SELECT embedding_id, jsonb_array_length(embedding) FROM {table}").fetchall()  # type: ignore[arg-type]
    return {str(r[0]): int(r[1]) for r in rows}


def test_unchanged_texts_cost_nothing_and_a_rename_reuses_the_vector(
    api_env: EmulatorServer, pg_env: BackendSettings, tmp_path: Path
) -> None:
    texts = {"a": "alpha policy text", "b": "beta handbook text", "c": "gamma product text"}
    _embed(texts, tmp_path, pg_env, "pod-1")
    assert api_env.stats().get("voyage_texts") == 3

    _embed(texts, tmp_path, pg_env, "pod-2")  # a re-run: every id present with its text hash
    assert api_env.stats().get("voyage_texts") == 3

    renamed = {"a": texts["a"], "b2": texts["b"], "c": "gamma product text, edited"}
    _embed(renamed, tmp_path, pg_env, "pod-3")
    assert api_env.stats().get("voyage_texts") == 4  # only the edited text was sent
    stored = _stored(pg_env)
    assert {"a", "b", "b2", "c"} <= set(stored) and set(stored.values()) == {DIMS}
