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


_ACTIONABLE = (
    "APIConnectionError",
    "APITimeoutError",
    "ConnectError",
    "ConnectTimeout",
    "AuthenticationError",
    "PermissionDeniedError",
)


def actionable_cause(exc: BaseException) -> BaseException | None:
    """The connection or auth error inside ``exc``'s chain (dlt wraps a resource's error in its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if type(current).__name__ in _ACTIONABLE:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reraise_actionable(exc: BaseException, base_url: str | None, key_variable: str) -> None:
    """Raise a ``dg.Failure`` naming the endpoint and what to check, if ``exc`` is a connection/auth error."""
    cause = actionable_cause(exc)
    if cause is None:
        return
    import dagster as dg

    raise dg.Failure(describe_api_error(cause, base_url, key_variable)) from exc
