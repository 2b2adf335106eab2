"""Invoking declared points from an application: :class:`Points` (blocking, safe
to share between threads) and :class:`AsyncPoints` (asyncio), the same API.

Both hold one access token for the management API, fetched with the client's
credentials (RFC 6749 §4.4) when first needed and reused for every call until
shortly before it expires: a token request costs the server a signature and the
client a round trip, so fetching one per call would double the work. Callers
that need a token at the same time wait for one fetch rather than each making
their own. A token the API refuses (``401 invalid_token``: expired early, its
signing key revoked) is dropped, and the call made once more with a new one;
nothing ran for the refused call, so that is always safe.

A call that gets no answer (connection refused or reset, a timeout) is retried
only when it carries an idempotency key. Without one, the client cannot know
whether the request reached the server before the connection failed: a
blocking point's hooks may have run (and done what they do), a non-blocking
point's event may have been queued, and sending it again would do it twice.
With a key the server answers a repeated request with the answer it kept
instead of running anything again, so retrying is safe.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from authhooks.client import wire
from authhooks.client.errors import ConnectionFailed
from authhooks.client.wire import Invocation, Token

# Failures after which a request with an idempotency key is sent again: no
# answer, or a connection the server closed. Others (a malformed URL, a proxy
# refusing) would fail the same way again.
RETRIED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
DEFAULT_TIMEOUT = 30.0  # a blocking point's flow may run each hook up to its timeout
DEFAULT_RETRIES = 2


class _Config:
    """What both clients are made of, checked once."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        audience: str | None,
        timeout: float | httpx.Timeout,
        retries: int,
        renew_before: float,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be the server's http(s) URL, not {url!r}")
        if retries < 0 or renew_before < 0:
            raise ValueError("retries and renew_before cannot be negative")
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.audience = audience or self.url + "/api/v2/"
        self.form = wire.token_form(client_id, client_secret, self.audience)
        self.timeout = timeout
        self.retries = retries
        self.renew_before = renew_before

    def attempts(self, idempotency_key: str | None) -> int:
        return 1 + (self.retries if idempotency_key is not None else 0)

    def __repr__(self) -> str:  # never the secret
        return f"url={self.url!r}, client_id={self.client_id!r}, audience={self.audience!r}"


class Points:
    """Invokes the points a server's applications declared, as one application.

    ``url`` is the server's base URL; ``client_id`` and ``client_secret`` are an
    application's, granted ``invoke:points:<id>`` (or ``invoke:points``) on the
    management API, whose identifier ``audience`` is ``<url>/api/v2/`` unless the
    server's issuer differs from ``url``. ``timeout`` bounds each HTTP request
    (seconds, or an ``httpx.Timeout``); ``retries`` is how many more times a
    request carrying an idempotency key is sent when no answer came;
    ``renew_before`` is how many seconds before its expiry a token is replaced.
    ``http_client`` is an ``httpx.Client`` of your own (proxies, certificates,
    event hooks), left open on close; by default one is made and closed here.

    Safe to share between threads; use it as a context manager, or ``close()`` it.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        renew_before: float = wire.RENEW_BEFORE,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config = _Config(
            url, client_id, client_secret, audience, timeout, retries, renew_before
        )
        self._owned = http_client is None
        self._http = http_client or httpx.Client()
        self._lock = threading.Lock()  # held while a token is fetched: one fetch for all
        self._token: Token | None = None

    def invoke(
        self, point_id: str, event: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Invocation:
        """Invoke ``point_id`` with ``event``: a blocking point's result, or a
        non-blocking point's ``event_id``. Raises PointDenied when a hook refuses,
        InvalidEvent when the event does not fit the point's schema,
        AuthenticationError, ConnectionFailed, or PointError for anything else."""
        wire.check_key(idempotency_key)
        attempts = self._config.attempts(idempotency_key)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(point_id, dict(event), idempotency_key)
            except httpx.TransportError as error:
                if last or not isinstance(error, RETRIED):
                    raise ConnectionFailed(f"{type(error).__name__}: {error}") from error
                time.sleep(wire.backoff(attempt))
                continue
            if attempt and not last and wire.in_use(response):
                # The attempt that got no answer is still running on the server.
                time.sleep(wire.backoff(attempt))
                continue
            return wire.invocation(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        """Close the HTTP client, if it is this object's own."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> Points:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Points({self._config!r})"

    def _send(self, point_id: str, event: dict[str, Any], key: str | None) -> httpx.Response:
        """The invocation with the cached token, and once more with a new token if
        the API refused that one."""
        token = self._current_token()
        response = self._post(point_id, event, key, token)
        if wire.token_refused(response):
            self._forget(token)
            response = self._post(point_id, event, key, self._current_token())
        return response

    def _post(
        self, point_id: str, event: dict[str, Any], key: str | None, token: str
    ) -> httpx.Response:
        return self._http.post(
            self._config.url + wire.invoke_path(point_id),
            json={"event": event},
            headers={"User-Agent": wire.USER_AGENT, **wire.invoke_headers(token, key)},
            timeout=self._config.timeout,
        )

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or not self._token.fresh(time.monotonic()):
                self._token = self._fetch()
            return self._token.value

    def _forget(self, used: str) -> None:
        """Drop ``used`` unless another caller has replaced it already."""
        with self._lock:
            if self._token is not None and self._token.value == used:
                self._token = None

    def _fetch(self) -> Token:
        asked_at = time.monotonic()
        response = self._http.post(
            self._config.url + "/oauth/token",
            data=self._config.form,
            headers={"User-Agent": wire.USER_AGENT},
            timeout=self._config.timeout,
        )
        return wire.read_token(response, asked_at, self._config.renew_before)


class AsyncPoints:
    """:class:`Points` for asyncio: the same arguments (``http_client`` is an
    ``httpx.AsyncClient``), ``await points.invoke(...)``. Concurrent tasks share
    one token fetch. Use it as an async context manager, or ``await aclose()``."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        renew_before: float = wire.RENEW_BEFORE,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = _Config(
            url, client_id, client_secret, audience, timeout, retries, renew_before
        )
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self._lock = asyncio.Lock()  # held while a token is fetched: one fetch for all
        self._token: Token | None = None

    async def invoke(
        self, point_id: str, event: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Invocation:
        """As :meth:`Points.invoke`."""
        wire.check_key(idempotency_key)
        attempts = self._config.attempts(idempotency_key)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._send(point_id, dict(event), idempotency_key)
            except httpx.TransportError as error:
                if last or not isinstance(error, RETRIED):
                    raise ConnectionFailed(f"{type(error).__name__}: {error}") from error
                await asyncio.sleep(wire.backoff(attempt))
                continue
            if attempt and not last and wire.in_use(response):
                await asyncio.sleep(wire.backoff(attempt))
                continue
            return wire.invocation(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aclose(self) -> None:
        """Close the HTTP client, if it is this object's own."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPoints:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncPoints({self._config!r})"

    async def _send(self, point_id: str, event: dict[str, Any], key: str | None) -> httpx.Response:
        token = await self._current_token()
        response = await self._post(point_id, event, key, token)
        if wire.token_refused(response):
            await self._forget(token)
            response = await self._post(point_id, event, key, await self._current_token())
        return response

    async def _post(
        self, point_id: str, event: dict[str, Any], key: str | None, token: str
    ) -> httpx.Response:
        return await self._http.post(
            self._config.url + wire.invoke_path(point_id),
            json={"event": event},
            headers={"User-Agent": wire.USER_AGENT, **wire.invoke_headers(token, key)},
            timeout=self._config.timeout,
        )

    async def _current_token(self) -> str:
        async with self._lock:
            if self._token is None or not self._token.fresh(time.monotonic()):
                self._token = await self._fetch()
            return self._token.value

    async def _forget(self, used: str) -> None:
        async with self._lock:
            if self._token is not None and self._token.value == used:
                self._token = None

    async def _fetch(self) -> Token:
        asked_at = time.monotonic()
        response = await self._http.post(
            self._config.url + "/oauth/token",
            data=self._config.form,
            headers={"User-Agent": wire.USER_AGENT},
            timeout=self._config.timeout,
        )
        return wire.read_token(response, asked_at, self._config.renew_before)
