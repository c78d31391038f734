"""Connection and auth failures name the endpoint and what to check; the SDK's retries are warnings."""

from __future__ import annotations

from pathlib import Path

import anthropic
import dagster as dg
import pytest

from harvest_defs.defs.errors import describe_api_error
from harvest_defs.defs.local_run import materialize_selection
from harvest_defs.defs.retry_log import sdk_retry_warnings
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude.client import make_client
from harvest_defs_tests.defs.dagster_dev import free_port


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def test_unreachable_endpoint_retries_are_warnings_and_the_error_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = make_client("sk-ant-never-shown", url, max_retries=2)
    log = _Log()
    with sdk_retry_warnings(log, url, 2), pytest.raises(anthropic.APIConnectionError) as failed:
        client.messages.batches.list(limit=1)
    assert len(log.warnings) == 2, log.warnings
    assert "retry 1 of 2" in log.warnings[0] and "retry 2 of 2" in log.warnings[1]
    assert all(w.startswith(f"{url}/v1/messages/batches") for w in log.warnings), log.warnings
    message = describe_api_error(failed.value, url)
    assert url in message and "harvest emulator" in message and "base URL" in message
    assert "sk-ant-never-shown" not in message + "".join(log.warnings)


def test_auth_failure_in_a_run_names_the_endpoint_and_the_variable(
    chain_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_env: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    harvest_home: Path,
) -> None:
    api_env.configure(valid_api_keys=["sk-ant-the-right-one"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-a-wrong-one")
    result = materialize_selection(
        chain_defs, instance, ["documents", "claude_summary_batches"], "alpha", raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    text = str(failure.step_failure_data.error)
    assert api_env.anthropic_base_url in text and "ANTHROPIC_API_KEY" in text, text
    assert "sk-ant-a-wrong-one" not in text and "sk-ant-the-right-one" not in text


def test_voyage_auth_failure_names_the_voyage_endpoint(
    chain_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_env: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    harvest_home: Path,
) -> None:
    from harvest_defs.defs.local_run import run_requests, tick_sensor
    from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY

    api_env.configure(valid_api_keys=[TEST_ANTHROPIC_KEY, "pa-the-right-one"])
    monkeypatch.setenv("VOYAGE_API_KEY", "pa-a-wrong-one")
    materialize_selection(chain_defs, instance, ["documents", "claude_summary_batches"], "alpha")
    tick = tick_sensor(chain_defs, instance, "claude_batch_sensor", None)
    [result] = run_requests(chain_defs, instance, tick.run_requests, raise_on_error=False)
    failures = [str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
    assert failures, "the embedding step should fail with a wrong Voyage key"
    text = failures[0]
    assert api_env.voyage_base_url in text and "VOYAGE_API_KEY" in text, text
    assert "pa-a-wrong-one" not in text
