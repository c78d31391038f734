"""The SDKs' own generated API tests, run against the emulator (see ``sdk_suites``).

anthropic's ``tests/api_resources/test_messages.py`` (create, streaming, count_tokens, deprecated-model
warnings, with "all params" bodies), ``messages/test_batches.py`` and ``beta/messages/test_batches.py``
must pass, except tests that can only fail against a stateful server because they use the suites'
placeholder ids; openai's ``test_batches.py`` / ``test_files.py`` run against the Voyage subset with the
same rule. Each expected failure must fail with the specific error its placeholder causes — anything
else failing, or an expected failure passing or failing differently, fails this test.

Skips (with the reason) only when the sdist cannot be downloaded (offline).
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.emulator import sdk_suites

ANTHROPIC = sdk_suites.Suite(
    package="anthropic",
    version=version("anthropic"),
    files=(
        "_alias_httpx.py",  # respx mocks httpx; anthropic is built on httpx2 (the suite's own plugin)
        "utils.py",
        "api_resources/test_messages.py",
        "api_resources/messages/test_batches.py",
        "api_resources/beta/messages/test_batches.py",
    ),
    imports="from anthropic import Anthropic, AsyncAnthropic",
    sync_client="Anthropic",
    async_client="AsyncAnthropic",
    plugins=("tests._alias_httpx",),
)
OPENAI = sdk_suites.Suite(
    package="openai",
    version=version("openai"),
    files=("utils.py", "respx2", "api_resources/test_batches.py", "api_resources/test_files.py"),
    imports="from openai import OpenAI, AsyncOpenAI",
    sync_client="OpenAI",
    async_client="AsyncOpenAI",
    plugins=("tests.respx2.plugin",),
)

# (pattern on the test id, the exception the placeholder causes, why).
ANTHROPIC_EXPECTED = [
    (
        r"_(method|raw_response|streaming_response)_(retrieve|delete|cancel)(_with_all_params)?\[",
        "NotFoundError",
        "the suite addresses batch id 'message_batch_id', which no server has: 404 not_found_error",
    ),
    (
        r"_method_list_with_all_params\[",
        "BadRequestError",
        "list(after_id='after_id', before_id='before_id'): placeholder cursors (and both at once): 400",
    ),
]
OPENAI_EXPECTED = [
    (
        r"_(method|raw_response|streaming_response)_(retrieve|delete|cancel|retrieve_content)\[",
        "NotFoundError",
        "placeholder ids 'batch_id' / 'file_id': 404 {'detail': ...}",
    ),
    (
        r"_(method|raw_response|streaming_response)_create(_with_all_params)?\[",
        "BadRequestError",
        "OpenAI-only values Voyage rejects: endpoint '/v1/responses', purpose 'assistants', and the "
        "placeholder input_file_id: 400",
    ),
    (
        r"_method_list_with_all_params\[",
        "BadRequestError",
        "files.list(limit=0): Voyage documents limit 1-10000; batches.list(after='after'/limit): 400",
    ),
]


def _check(outcome: sdk_suites.Outcome, expected: list[tuple[str, str, str]], min_passed: int) -> None:
    unexpected = {}
    for test_id, message in outcome.failed.items():
        rule = next((r for r in expected if re.search(r[0], test_id)), None)
        if rule is None or rule[1] not in message:
            unexpected[test_id] = message
    assert not unexpected, f"unexpected failures: {unexpected}\n{outcome.log}"
    should_fail = [t for t in outcome.passed if any(re.search(r[0], t) for r in expected)]
    assert not should_fail, f"expected failures that passed (update the list): {should_fail}"
    assert len(outcome.passed) >= min_passed, outcome.log
    assert not outcome.skipped - {t for t in outcome.skipped if "aiohttp" in t}, outcome.skipped


def _run(suite: sdk_suites.Suite, cache: Path, tmp_path: Path, base_url: str) -> sdk_suites.Outcome:
    try:
        sdist = sdk_suites.fetch_sdist(suite.package, suite.version, cache)
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"cannot download the {suite.package} {suite.version} sdist (offline?): {exc}")
    staged = sdk_suites.stage(suite, sdist, tmp_path / suite.package)
    return sdk_suites.run(suite, staged, base_url, ["tests/api_resources"])


@pytest.fixture
def sdist_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under `-p no:cacheprovider`
    return Path(cache.mkdir("sdk-sdists")) if cache is not None else tmp_path_factory.mktemp("sdk-sdists")


def test_anthropic_suite_passes_against_the_emulator(
    emulator: EmulatorServer, sdist_cache: Path, tmp_path: Path
) -> None:
    outcome = _run(ANTHROPIC, sdist_cache, tmp_path, emulator.anthropic_base_url)
    # 317 tests in anthropic 2.13.0 (sync, async and async-over-aiohttp variants); all but 130 pass.
    _check(outcome, ANTHROPIC_EXPECTED, min_passed=150)
    messages = [t for t in outcome.passed if "api_resources/test_messages.py" in t]
    assert any("count_tokens_with_all_params" in t for t in messages)
    assert any("create_with_all_params_overload_2" in t for t in messages)  # streaming
    stats = emulator.stats()
    assert stats["anthropic_batches_created"] > 0 and stats["anthropic_count_tokens"] > 0


def test_openai_files_and_batches_suite_against_the_voyage_subset(
    emulator: EmulatorServer, sdist_cache: Path, tmp_path: Path
) -> None:
    outcome = _run(OPENAI, sdist_cache, tmp_path, emulator.voyage_base_url)
    _check(outcome, OPENAI_EXPECTED, min_passed=50)
    assert any("test_files.py" in t and "test_method_list[strict]" in t for t in outcome.passed)
