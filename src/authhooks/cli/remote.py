"""The management API over HTTP, as the CLI uses it: tokens got, cached and renewed,
failures turned into one readable line, and hooks found by name."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

import httpx

from authhooks.cli import profiles
from authhooks.cli.output import CliError, ExitCode
from authhooks.cli.profiles import Profile

_PAGE = 100
STREAM_SILENCE = 90.0
USER_AGENT = f"authhooks-cli/{version('authhooks')}"


class Remote:
    def __init__(self, profile: Profile, *, timeout: float = 60.0) -> None:
        self.profile = profile
        self._http = httpx.Client(
            base_url=profile.url, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        self._token: str | None = None
        self._token_expires_at = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Tokens

    def token(self, *, renew: bool = False) -> str:
        """A management token: this run's, the cached one, or a new one."""
        if not renew:
            # This run's own token while it has time left, else the cache's.
            if self._token is not None and self._token_expires_at - 30 > time.time():
                return self._token
            cached = profiles.cached_token(self.profile)
            if cached is not None:
                self._token, self._token_expires_at = cached
                return cached[0]
        response = self._send(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.profile.client_id,
                "client_secret": self.profile.client_secret,
                "audience": self.profile.management_audience,
            },
        )
        if response.status_code in (400, 401, 403):
            raise CliError(
                f"{self.profile.url} refused the credentials of profile "
                f"{self.profile.name!r}: {_reason(response)}",
                ExitCode.AUTH,
            )
        if response.status_code != 200:
            raise CliError(
                f"{self.profile.url}/oauth/token failed: {_reason(response)}", ExitCode.FAILED
            )
        try:
            issued = response.json()
            token = str(issued["access_token"])
            expires_in = float(issued.get("expires_in", 0))
        except (ValueError, KeyError, TypeError):
            raise CliError(
                f"{self.profile.url}/oauth/token did not answer with a token: is this an "
                "authhooks server?",
                ExitCode.UNREACHABLE,
            ) from None
        profiles.cache_token(self.profile, token, expires_in)
        self._token, self._token_expires_at = token, time.time() + expires_in
        return token

    # Requests

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method`` on ``/api/v2`` + ``path``: the answer's JSON (None when empty)."""
        response = self.response(method, path, **kwargs)
        if response.status_code >= 400:
            raise CliError(f"{_reason(response)}", ExitCode.FAILED)
        if response.status_code >= 300:
            raise CliError(
                f"{method} {path}: the server answered {response.status_code} "
                f"(a redirect to {response.headers.get('location', '?')}): is the URL right?",
                ExitCode.FAILED,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"{method} {path}: the answer is not JSON: is {self.profile.url} an authhooks "
                "server?",
                ExitCode.FAILED,
            ) from None

    def response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer, after renewing a token the server no longer takes."""
        response = self._send(method, "/api/v2" + path, token=self.token(), **kwargs)
        if response.status_code == 401:
            profiles.forget_token(self.profile)
            response = self._send(method, "/api/v2" + path, token=self.token(renew=True), **kwargs)
        if response.status_code == 401:
            raise CliError(
                f"{self.profile.url} refused the token of profile {self.profile.name!r}: "
                f"{_reason(response)}",
                ExitCode.AUTH,
            )
        return response

    @contextmanager
    def stream(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        """A streamed GET (Server-Sent Events), with no read timeout."""
        response = self._open_stream(path, params, headers, self.token())
        if response.status_code == 401:  # the cached token is no longer taken
            response.close()
            profiles.forget_token(self.profile)
            response = self._open_stream(path, params, headers, self.token(renew=True))
        try:
            if response.status_code >= 400:
                response.read()
                code = ExitCode.FAILED
                if response.status_code == 401:
                    code = ExitCode.AUTH
                elif response.status_code in (502, 503, 504):  # stopping, or behind a proxy
                    code = ExitCode.UNREACHABLE
                raise CliError(_reason(response), code)
            yield response
        finally:
            response.close()

    def _open_stream(
        self, path: str, params: dict[str, str], headers: dict[str, str], token: str
    ) -> httpx.Response:
        request = self._http.build_request(
            "GET",
            "/api/v2" + path,
            params=params,
            headers={**headers, "Authorization": f"Bearer {token}"},
            # Heartbeats come every 15 s by default: silence for this long is a dead link.
            timeout=httpx.Timeout(10.0, read=STREAM_SILENCE),
        )
        try:
            return self._http.send(request, stream=True)
        except httpx.TransportError as error:
            raise _unreachable(self.profile.url, error) from None

    def _send(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {
            **kwargs.pop("headers", {}),
            **({"Authorization": f"Bearer {token}"} if token else {}),
        }
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            raise _unreachable(self.profile.url, error) from None

    # Hooks by name

    def every(self, path: str, what: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, all pages (``what`` names them in an error)."""
        found: list[dict[str, Any]] = []
        page = 0
        while True:
            batch = self.call("GET", path, params={**params, "page": page, "per_page": _PAGE})
            if not isinstance(batch, list):
                raise CliError(f"GET {path}: the answer is not a list of {what}", ExitCode.FAILED)
            found += batch
            if len(batch) < _PAGE:
                return found
            page += 1

    def hooks(self, trigger_id: str | None = None) -> list[dict[str, Any]]:
        """Every hook (of one point), all pages."""
        if trigger_id is None:
            return self.every("/hooks", "hooks")
        return self.every("/hooks", "hooks", triggerId=trigger_id)

    def hook(self, name: str) -> dict[str, Any]:
        """The hook called ``name``; an error suggesting the closest names otherwise."""
        every = self.hooks()
        for hook in every:
            if hook["name"] == name:
                return hook
        raise CliError(unknown_hook(name, [hook["name"] for hook in every]), ExitCode.FAILED)


def unknown_hook(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        return f"no hook named {name!r}; did you mean " + " or ".join(map(repr, close)) + "?"
    return f"no hook named {name!r} (`authhooks ls --all` lists the {len(names)} there are)"


def _reason(response: httpx.Response) -> str:
    """The server's own words: Auth0's error body, OAuth's, or the status line."""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return status
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description") or body.get("error")
        if isinstance(message, str) and message:
            return f"{status}: {message}"
    return status


def _unreachable(url: str, error: httpx.TransportError) -> CliError:
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        reason = f"no answer in time ({type(error).__name__})"
    return CliError(f"cannot reach {url}: {reason}", ExitCode.UNREACHABLE)
