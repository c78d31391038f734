"""Shared fixtures: one real emulator server per test session, reset to defaults before each test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from harvest_defs.emulator import EmulatorConfig, EmulatorServer

TEST_ANTHROPIC_KEY = "sk-ant-test-key"
TEST_VOYAGE_KEY = "pa-test-key"


def pytest_configure(config: pytest.Config) -> None:
    """dlt's global data dir (its default pipeline ``dlt_pytest``, and the library's default home beside
    it) in a temp dir per test process, never the machine-wide ``/var/dlt`` that every run would share.
    One per xdist worker (the workers inherit the controller's environment); a ``DLT_DATA_DIR`` the user
    set is kept."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    owner = os.environ.get("HARVEST_TESTS_DLT_OWNER")
    if "DLT_DATA_DIR" not in os.environ or (owner is not None and owner != worker):
        os.environ["DLT_DATA_DIR"] = tempfile.mkdtemp(prefix=f"harvest-tests-dlt-{worker}-")
        os.environ["HARVEST_TESTS_DLT_OWNER"] = worker


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(batch_processing_seconds=0.0)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session's emulator with fresh state: default config (instant batches), zeroed stats."""
    emulator_server.configure(**EmulatorConfig(batch_processing_seconds=0.0).to_dict())
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def api_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """Point every client at the emulator through the same environment variables users set."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.anthropic_base_url)
    monkeypatch.setenv("VOYAGE_API_KEY", TEST_VOYAGE_KEY)
    monkeypatch.setenv("VOYAGE_BASE_URL", emulator.voyage_base_url)
    return emulator
