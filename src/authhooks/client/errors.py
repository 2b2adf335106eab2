"""What an invocation can fail with, as exceptions carrying the server's answer.

Every failure is a :class:`PointError`, so that one ``except`` catches them all,
with the HTTP status, the server's error code and its message; the subclasses
are the failures an application handles differently: a hook's deliberate
refusal (:class:`PointDenied`), an event the point's schema refuses
(:class:`InvalidEvent`), credentials the server does not take
(:class:`AuthenticationError`), and no answer at all (:class:`ConnectionFailed`).
Anything else (an unknown point, a missing scope, a hook that crashed, an
idempotency key used for another event) is a plain ``PointError`` told apart by
its ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PointError(Exception):
    """The server answered an invocation with an error.

    ``status`` is the HTTP status (0 when there was no answer), ``code`` the
    server's error code (``inexistent_point``, ``insufficient_scope``,
    ``server_error``, ``idempotency_key_reused``, ...), ``message`` what it said
    was wrong, and ``body`` the whole JSON answer when there was one."""

    def __init__(
        self, status: int, code: str, message: str, body: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body: Mapping[str, Any] = body or {}


class PointDenied(PointError):
    """A hook of the point refused (``api.access.deny(reason)``, or a raised
    ``HookError``): a decision to show or act on, not a failure to retry."""

    @property
    def reason(self) -> str:
        """The hook's reason, as it gave it."""
        return self.message


@dataclass(frozen=True)
class EventError:
    """One place where the event does not fit the point's schema: an RFC 6901 JSON
    pointer into the event (``/customer/tier``; empty for the whole event) and
    what is wrong there."""

    pointer: str
    message: str


class InvalidEvent(PointError):
    """The event does not fit the point's ``event_schema``; no hook ran.
    ``errors`` names every place (up to the server's limit), to mend the event."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: Mapping[str, Any] | None = None,
        errors: list[EventError] | None = None,
    ) -> None:
        super().__init__(status, code, message, body)
        self.errors: list[EventError] = errors or []


class AuthenticationError(PointError):
    """The token endpoint gave no token for these credentials (``invalid_client``,
    a client without a grant for the API, ...), or the API refused a token fetched
    just before: check the client's id, secret, grant and the audience."""


class ConnectionFailed(PointError):
    """No answer came (connection refused or reset, a timeout), after the retries
    an idempotency key allows. The exception it wraps is its ``__cause__``.
    Without a key the request may or may not have run: see the guide's
    "Idempotency keys" before retrying it."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "connection_failed", message)


def error_from(status: int, body: Any, text: str) -> PointError:
    """The exception an error answer of the management API stands for.

    Two shapes come back: the management API's own (Auth0's ``{"statusCode",
    "error", "message", "errorCode"}``, for requests the API refuses) and the
    OAuth-like ``{"error", "error_description"}`` of a flow's outcome (a hook's
    refusal, a hook's failure)."""
    if not isinstance(body, Mapping):
        return PointError(status, f"http_{status}", text[:500] or f"HTTP {status}")
    if "statusCode" in body:
        phrase = str(body.get("error", ""))
        code = str(body.get("errorCode") or phrase.lower().replace(" ", "_") or f"http_{status}")
        message = str(body.get("message", phrase))
        if code == "invalid_event":
            return InvalidEvent(status, code, message, body, _event_errors(body.get("errors")))
        return PointError(status, code, message, body)
    code = str(body.get("error", f"http_{status}"))
    message = str(body.get("error_description", code))
    if status == 403 and code == "access_denied":
        return PointDenied(status, code, message, body)
    return PointError(status, code, message, body)


def _event_errors(found: Any) -> list[EventError]:
    if not isinstance(found, list):
        return []
    return [
        EventError(str(item.get("pointer", "")), str(item.get("message", "")))
        for item in found
        if isinstance(item, Mapping)
    ]
