"""What the client sends and reads, with no I/O: the token request and its answer,
an invocation's request and its answer. Shared by the blocking and the asyncio
client, so that the two cannot read an answer differently."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from authhooks.client.errors import AuthenticationError, PointError, error_from

USER_AGENT = "authhooks-client"
# A token is renewed this long before it expires by default, so that a call made
# just before the end of its lifetime does not arrive with a token the server
# has meanwhile stopped accepting (clock skew, a slow network, a long flow).
RENEW_BEFORE = 30.0
IDEMPOTENCY_KEY_MAX = 255


@dataclass(frozen=True)
class Invocation:
    """What an invocation answered.

    A blocking point answers with ``result``, the dict its hooks built (empty when
    the point has no enabled hook). A non-blocking point answers at once with
    ``event_id`` (its hooks run later, from the server's durable queue) and an
    empty ``result``. ``replayed`` is true when the server gave again the answer
    it kept for this idempotency key, without running anything."""

    result: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    replayed: bool = False

    @property
    def queued(self) -> bool:
        """Whether the point is non-blocking: the event was queued for its hooks."""
        return self.event_id is not None


@dataclass(frozen=True)
class Token:
    """A cached access token, and when (``time.monotonic()``) to fetch the next."""

    value: str
    renew_at: float

    def fresh(self, now: float) -> bool:
        return now < self.renew_at


def token_form(client_id: str, client_secret: str, audience: str) -> dict[str, str]:
    """A client-credentials token request (RFC 6749 §4.4), the secret in the form
    (``client_secret_post``), as Auth0's SDKs send it."""
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "audience": audience,
    }


def read_token(response: httpx.Response, asked_at: float, renew_before: float) -> Token:
    """The token of a token endpoint's answer; AuthenticationError when it gave none.

    The lifetime is counted from ``asked_at`` (before the request left), so that
    the time the answer took is never counted as the token's. A token is renewed
    ``renew_before`` seconds before it expires, but never before half its
    lifetime, so that a short-lived token is still reused; one without
    ``expires_in`` is kept until the API refuses it."""
    body = _json(response)
    if response.status_code != 200:
        if isinstance(body, Mapping):
            code = str(body.get("error", f"http_{response.status_code}"))
            message = str(body.get("error_description", code))
        else:
            code, message = f"http_{response.status_code}", response.text[:500]
        raise AuthenticationError(response.status_code, code, message, _mapping(body))
    token = body.get("access_token") if isinstance(body, Mapping) else None
    if not isinstance(token, str) or not token:
        raise AuthenticationError(
            response.status_code, "invalid_response", "the token endpoint answered no access_token"
        )
    lifetime = body.get("expires_in") if isinstance(body, Mapping) else None
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        return Token(token, asked_at + lifetime - min(renew_before, lifetime / 2))
    return Token(token, math.inf)


def invoke_path(point_id: str) -> str:
    return f"/api/v2/points/{quote(point_id, safe='')}/invoke"


def invoke_headers(token: str, idempotency_key: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def check_key(idempotency_key: str | None) -> None:
    """Refuse a key the server would refuse, before anything is sent."""
    if idempotency_key is None:
        return
    if (
        not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX
        or not idempotency_key.isascii()
        or not idempotency_key.isprintable()
    ):
        raise ValueError(
            f"idempotency_key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters "
            "(a UUID, say)"
        )


def token_refused(response: httpx.Response) -> bool:
    """The API refused the bearer token itself (RFC 6750 ``invalid_token``: expired,
    signed by a revoked key, its grant gone): a new one may be taken."""
    if response.status_code != 401:
        return False
    body = _json(response)
    if isinstance(body, Mapping) and body.get("errorCode") == "invalid_token":
        return True
    return 'error="invalid_token"' in response.headers.get("www-authenticate", "")


def invocation(response: httpx.Response) -> Invocation:
    """The answer to an invocation; the PointError it stands for otherwise."""
    body = _json(response)
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    if response.status_code == 200 and isinstance(body, Mapping):
        result = body.get("result")
        if isinstance(result, dict):
            return Invocation(result=result, replayed=replayed)
    if response.status_code == 202 and isinstance(body, Mapping):
        event_id = body.get("event_id")
        if isinstance(event_id, str):
            return Invocation(event_id=event_id, replayed=replayed)
    if response.is_success:
        raise PointError(
            response.status_code, "invalid_response", f"unexpected answer: {response.text[:500]}"
        )
    error = error_from(response.status_code, body, response.text)
    if response.status_code == 401:  # refused even with a token fetched for this call
        raise AuthenticationError(error.status, error.code, error.message, error.body)
    raise error


def in_use(response: httpx.Response) -> bool:
    """A request with the same idempotency key is still being answered (409)."""
    body = _json(response)
    return (
        response.status_code == 409
        and isinstance(body, Mapping)
        and body.get("errorCode") == "idempotency_key_in_use"
    )


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (0-based): 0.25, 0.5, 1, ... at most 4."""
    return float(min(0.25 * 2**attempt, 4.0))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _mapping(body: Any) -> Mapping[str, Any] | None:
    return body if isinstance(body, Mapping) else None
