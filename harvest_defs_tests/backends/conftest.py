"""A real PostgreSQL 16 + pgvector for the backend tests: one ``pgserver`` per session, a schema per test.

No skip: if the server cannot start, every test here fails (CI runs on the same machine type). Each test
gets its own schema (its own ledger and index tables), so tests and processes never see each other's rows.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from harvest_defs.harvest.backends import BACKEND_ENV, DSN_ENV, SCHEMA_ENV, BackendSettings, open_ledger
from harvest_defs.harvest.ledger import BatchLedger

BACKENDS = ["duckdb", "postgres"]


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """Not under pytest's tmp dir: as root, pgserver runs postgres as its own user, which must be able to
    reach the data dir (pytest keeps ``/tmp/pytest-of-<user>`` at 0700 and prunes it across sessions)."""
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="harvest-pgserver-"))
    root.chmod(0o755)
    server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
    try:
        dsn = server.get_uri()
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield dsn
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


@pytest.fixture
def pg_env(pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> BackendSettings:
    """The environment a deployment sets: every process started from here uses this test's schema."""
    monkeypatch.setenv(BACKEND_ENV, "postgres")
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    monkeypatch.setenv(SCHEMA_ENV, pg_schema)
    return BackendSettings.resolve()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BackendSettings:
    """Each test using this runs once per backend, with the backend's environment set."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_env")
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    return BackendSettings.resolve()


@pytest.fixture
def ledger_at(backend: BackendSettings) -> Callable[[Path], BatchLedger]:
    """``ledger_at(home / "ledger.sqlite")``: the ledger that path means under this test's backend."""
    return lambda path: open_ledger(path, backend)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per S3 call otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The variables a deployment sets for s3fs (botocore reads ``AWS_ENDPOINT_URL``); a fresh bucket."""
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"harvest-{socket.gethostname().lower()[:8]}-{id(monkeypatch):x}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/prod"
