"""The dlt pipeline for the chosen backend: the DuckDB file (default) or dlt's ``postgres`` destination.

Same resources, same ``primary_key``/``merge`` dispositions on both; only the destination differs. On
Postgres the ``embedding`` column arrives as ``jsonb`` (dlt has no pgvector type; the ``x-duckdb-type``
hint is DuckDB-only) and the index keeps the typed ``vector(dim)`` copy (``rag/pg_index.py``). Each
dataset is its own Postgres schema, prefixed with ``HARVEST_POSTGRES_SCHEMA`` so two deployments (or two
tests) on one server never share tables.
"""

from __future__ import annotations

from typing import Any

import dlt

from harvest_defs.harvest.backends.settings import BackendSettings


def dataset_schema(dataset_name: str, settings: BackendSettings) -> str:
    """The Postgres schema holding ``dataset_name`` (``<HARVEST_POSTGRES_SCHEMA>_<dataset>``)."""
    return f"{settings.postgres_schema}_{dataset_name}"


def postgres_credentials(settings: BackendSettings) -> Any:
    """dlt credentials from the DSN. Parsed with libpq's rules (psycopg), not dlt's URL parser: a DSN may
    name a Unix socket directory as ``?host=/path`` or be in ``key=value`` form, which dlt cannot read."""
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials
    from psycopg.conninfo import conninfo_to_dict

    assert settings.postgres_dsn is not None
    parts = conninfo_to_dict(settings.postgres_dsn)
    credentials = PostgresCredentials()
    credentials.database = str(parts.get("dbname") or "postgres")
    credentials.username = str(parts.get("user") or "postgres")
    credentials.password = str(parts.get("password") or "")
    host = str(parts.get("host") or "localhost")
    # A socket directory cannot sit in a URL's netloc (dlt renders one): keep it a query parameter,
    # which libpq lets override the placeholder host.
    credentials.host = "localhost" if host.startswith("/") else host
    credentials.port = int(parts.get("port") or 5432)
    skip = {"dbname", "user", "password", "port"} | (set() if host.startswith("/") else {"host"})
    extra = {k: str(v) for k, v in parts.items() if k not in skip}
    if extra:
        credentials.query = extra
    return credentials


def create_harvest_pipeline(
    pipeline_name: str,
    dataset_name: str,
    *,
    duckdb_path: str | None = None,
    pipelines_dir: str | None = None,
    settings: BackendSettings | None = None,
    **pipeline_kwargs: Any,
) -> dlt.Pipeline:
    """``create_duckdb_pipeline`` on the default backend; a ``postgres`` destination otherwise."""
    settings = settings or BackendSettings.resolve()
    if settings.name == "duckdb":
        from harvest_defs.harvest.pipeline import create_duckdb_pipeline

        return create_duckdb_pipeline(
            pipeline_name, dataset_name, duckdb_path, pipelines_dir, **pipeline_kwargs
        )
    if pipelines_dir is not None:
        pipeline_kwargs["pipelines_dir"] = pipelines_dir
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=dlt.destinations.postgres(credentials=postgres_credentials(settings)),
        dataset_name=dataset_schema(dataset_name, settings),
        **pipeline_kwargs,
    )
