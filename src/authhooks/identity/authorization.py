"""The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636, and
OAuth 2.1's rules): its parameters checked, in the order that decides where an
error may be told.

Until the client and its redirect URI are known good, an error is shown to the
person (``PageError``): redirecting to an unchecked URI would make this server
an open redirector. After that, every error goes back to the application at its
redirect URI, with ``state`` and ``iss`` (``RedirectError``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from authhooks.identity.directory import Api, Directory, KnownClient
from authhooks.identity.oauth2.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    OAuth2Error,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from authhooks.identity.oauth2.scope import parse_scope

# OpenID Connect's own scopes: they ask for an ID token, claims, a refresh token.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 §4.1: 43 to 128 unreserved characters (an S256 challenge is 43).
_PKCE_VALUE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_MAX_PARAMETER = 2048


class PageError(Exception):
    """An error told to the person on a page, never to an unchecked redirect URI."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


class RedirectError(Exception):
    """An OAuth 2.0 error sent back to the application's redirect URI."""

    def __init__(self, error: OAuth2Error, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self, issuer: str) -> str:
        body = self.error.body()
        return with_query(
            self.redirect_uri,
            {**body, **({"state": self.state} if self.state is not None else {}), "iss": issuer},
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request, as a transaction keeps it."""

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool  # then the token request must repeat it (RFC 6749 §4.1.3)
    scopes: tuple[str, ...]  # OIDC scopes first, then the API's, as requested
    audience: str | None  # the API the access token is for; None: userinfo only
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: frozenset[str] = field(default_factory=frozenset)
    max_age: int | None = None
    login_hint: str | None = None
    screen_hint: str | None = None
    ui_locales: str | None = None

    @property
    def openid(self) -> bool:
        return "openid" in self.scopes

    @property
    def api_scopes(self) -> tuple[str, ...]:
        return tuple(scope for scope in self.scopes if scope not in OIDC_SCOPES)

    def stored(self) -> dict[str, Any]:
        values = asdict(self)
        values["scopes"] = list(self.scopes)
        values["prompt"] = sorted(self.prompt)
        return values

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> AuthorizationRequest:
        return cls(
            **{
                **values,
                "scopes": tuple(values["scopes"]),
                "prompt": frozenset(values["prompt"]),
            }
        )

    def redirect_error(self, error: OAuth2Error) -> RedirectError:
        return RedirectError(error, self.redirect_uri, self.state)


# RFC 8252 §7.3: a native app listens on a loopback port the system chose, so a
# registered loopback redirect URI matches on any port.
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})


def registered(uri: str, callbacks: tuple[str, ...]) -> bool:
    """Whether ``uri`` is one of ``callbacks``: exactly, or, for an http loopback IP
    address, on any port."""
    if uri in callbacks:
        return True
    try:
        portless = _portless(uri)
        if portless is None:
            return False
        return any(_portless(callback) == portless for callback in callbacks)
    except ValueError:  # a malformed port or host: not registered
        return False


def _portless(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        return None
    return parts._replace(netloc=_host(parts.hostname)).geturl()


def _host(hostname: str) -> str:
    return f"[{hostname}]" if ":" in hostname else hostname


def with_query(uri: str, values: dict[str, str]) -> str:
    """``uri`` with ``values`` added to its query (RFC 6749 §4.1.2: keep its own)."""
    separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    return f"{uri}{separator}{urlencode(values)}"


def _single_values(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str], list[str], list[str]]:
    """The parameters (an empty value is as if absent), the names that repeat (which
    RFC 6749 §3.1 forbids), and the names whose value holds a NUL."""
    values: dict[str, str] = {}
    repeated: list[str] = []
    with_nul: list[str] = []
    for name, value in pairs:
        if name in values and name not in repeated:
            repeated.append(name)
        if "\0" in value or "\0" in name:
            with_nul.append(name.replace("\0", "?"))
        values[name] = value
    present = {name: value for name, value in values.items() if value != ""}
    return present, repeated, with_nul


async def check_request(
    directory: Directory,
    pairs: list[tuple[str, str]],
    *,
    default_audience: str,
    management_audience: str,
) -> tuple[KnownClient, AuthorizationRequest, Api | None]:
    """The client, the checked request and the API the token is for (None: no API,
    the access token is good for userinfo only); PageError or RedirectError."""
    params, repeated, with_nul = _single_values(pairs)
    for name in ("client_id", "redirect_uri"):
        if name in repeated:
            raise PageError("Invalid request", f"the parameter {name} is repeated: send it once")
        if name in with_nul:
            raise PageError("Invalid request", f"the parameter {name} holds a NUL character")
    client_id = params.get("client_id")
    if client_id is None:
        raise PageError("Invalid request", "client_id is missing")
    client = await directory.client(client_id) or await directory.client_again(client_id)
    if client is None:
        raise PageError("Unknown application", "no application has this client_id")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        if len(client.callbacks) != 1:
            raise PageError(
                "Invalid request",
                "redirect_uri is missing, and the application registered "
                + ("none" if not client.callbacks else "several"),
            )
        chosen = client.callbacks[0]
    elif not registered(redirect_uri, client.callbacks):
        raise PageError(
            "Callback URL mismatch",
            f"{redirect_uri[:200]} is not one of the application's registered callback URLs",
        )
    else:
        chosen = redirect_uri
    state = params.get("state")

    def fail(error: OAuth2Error) -> RedirectError:
        return RedirectError(error, chosen, state)

    if repeated:
        raise fail(InvalidRequestError(f"the parameter {repeated[0]} is repeated: send it once"))
    if with_nul:
        raise fail(InvalidRequestError(f"the parameter {with_nul[0]} holds a NUL character"))
    for name, value in params.items():
        if len(value) > _MAX_PARAMETER:
            raise fail(InvalidRequestError(f"{name} is longer than {_MAX_PARAMETER} characters"))
    if "request" in params:
        raise fail(RequestNotSupportedError("request objects are not supported"))
    if "request_uri" in params:
        raise fail(RequestUriNotSupportedError("request_uri is not supported"))
    response_type = params.get("response_type")
    if response_type is None:
        raise fail(InvalidRequestError("response_type is missing"))
    if response_type != "code":
        raise fail(UnsupportedResponseTypeError("only response_type=code is supported"))
    if params.get("response_mode", "query") != "query":
        raise fail(InvalidRequestError("only response_mode=query is supported"))
    if "authorization_code" not in client.grant_types:
        raise fail(UnauthorizedClientError("this client may not use the authorization_code grant"))

    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise fail(InvalidRequestError("code_challenge_method without code_challenge"))
        if client.public:
            raise fail(
                InvalidRequestError("a public client must use PKCE: code_challenge is missing")
            )
    else:
        if method != "S256":
            # RFC 7636 §4.3: without a method the challenge is plain, which is refused.
            raise fail(InvalidRequestError("code_challenge_method must be S256 (plain is refused)"))
        if len(challenge) != 43 or not _PKCE_VALUE.fullmatch(challenge):
            raise fail(InvalidRequestError("code_challenge must be 43 base64url characters (S256)"))

    try:
        prompt = frozenset(parse_scope(params.get("prompt")))
    except InvalidScopeError:
        raise fail(
            InvalidRequestError("prompt must be values separated by single spaces")
        ) from None
    unknown_prompts = sorted(prompt - PROMPTS)
    if unknown_prompts:
        raise fail(InvalidRequestError(f"prompt {' '.join(unknown_prompts)} is not supported"))
    if "none" in prompt and len(prompt) > 1:
        raise fail(InvalidRequestError("prompt=none may not be combined with other values"))
    max_age = None
    if "max_age" in params:
        if not re.fullmatch(r"[0-9]{1,10}", params["max_age"]):
            raise fail(InvalidRequestError("max_age must be a number of seconds"))
        max_age = int(params["max_age"])
    screen_hint = params.get("screen_hint")
    if screen_hint not in (None, "signup", "login"):
        raise fail(InvalidRequestError("screen_hint must be signup or login"))

    audience, api = await _target(directory, params, default_audience, management_audience, fail)
    try:
        requested = [value for value in parse_scope(params.get("scope")) if value]
    except InvalidScopeError as error:
        raise fail(error) from None
    defined = api.defined_scopes if api is not None else frozenset()
    unknown = [value for value in requested if value not in OIDC_SCOPES and value not in defined]
    if unknown:
        where = f"by {audience!r}" if audience else "without an audience"
        raise fail(InvalidScopeError(f"scope {' '.join(unknown)} is not defined {where}"))
    scopes = tuple(dict.fromkeys(requested))
    if "openid" in scopes and redirect_uri is None:
        raise fail(InvalidRequestError("redirect_uri is required (OpenID Connect Core §3.1.2.1)"))
    if challenge is None and not ("openid" in scopes and "nonce" in params):
        # RFC 9700 §2.1.1: a code must be bound to its request, by PKCE or by the
        # OpenID Connect nonce, or an attacker's code could be injected.
        raise fail(
            InvalidRequestError(
                "use PKCE (code_challenge with S256), or an OpenID Connect request with a nonce"
            )
        )
    return (
        client,
        AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=chosen,
            redirect_uri_given=redirect_uri is not None,
            scopes=scopes,
            audience=audience,
            state=state,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            prompt=prompt,
            max_age=max_age,
            login_hint=params.get("login_hint"),
            screen_hint=screen_hint,
            ui_locales=params.get("ui_locales"),
        ),
        api,
    )


async def _target(
    directory: Directory,
    params: dict[str, str],
    default_audience: str,
    management_audience: str,
    fail: Any,
) -> tuple[str | None, Api | None]:
    """Auth0's ``audience`` or RFC 8707's ``resource``: the API the token is for."""
    audience, resource = params.get("audience"), params.get("resource")
    if audience and resource and audience != resource:
        raise fail(InvalidRequestError("audience and resource name different APIs: send one"))
    by_resource = resource is not None and audience is None
    chosen = audience or resource or default_audience or None
    if chosen is None:
        return None, None
    if by_resource:
        parts = urlsplit(chosen)
        if not parts.scheme or parts.fragment or "#" in chosen:
            raise fail(InvalidTargetError("resource must be an absolute URI without a fragment"))
    api = await directory.api(chosen)
    if api is None or chosen == management_audience:
        message = f"users cannot get tokens for {chosen!r}"
        raise fail(InvalidTargetError(message) if by_resource else AccessDeniedError(message))
    return chosen, api
