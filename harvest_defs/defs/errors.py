"""API failures as a user can act on them: which endpoint, and what to check — never the key."""

from __future__ import annotations


def describe_api_error(
    exc: BaseException, base_url: str | None, key_variable: str = "ANTHROPIC_API_KEY"
) -> str:
    """One line naming the error, the endpoint and the likely fix (the SDKs' own text names neither)."""
    name = type(exc).__name__
    where = base_url or "the provider's default API URL"
    if name in ("APIConnectionError", "APITimeoutError", "ConnectError", "ConnectTimeout"):
        return (
            f"{name}: cannot reach {where} (after the SDK's retries). Is the endpoint up — for local "
            "work, is `harvest emulator` running — and is the base URL right?"
        )
    if name in ("AuthenticationError", "PermissionDeniedError"):
        return f"{name} from {where}: check {key_variable} (the key is never logged)."
    return f"{name} from {where}: {exc}"
