"""What the token points (credentials-exchange, password-exchange) share: the
state of a flow, the rules a hook's output follows, the access token's claims,
the Actions ``api``, and how a refusal becomes an OAuth 2.0 error.

A hook's output is a dict: ``scope`` (a list) replaces the scopes so far, and
keys that are http(s) URLs become custom claims, as in Auth0 Hooks. Everything
else is ignored with a note in the hook's log. Claims the server sets can never
be overwritten: they are not URLs, so they never become claims, and a hook that
tries is told so. A hook may narrow the scopes, and add only scopes the API
defines; an API that defines none allows none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authhooks.points.contract import (
    BadOutput,
    Command,
    Denial,
    Denied,
    Output,
    Refusal,
)

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
SCOPE_TOKEN_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]+$"
SCOPE_TOKEN = re.compile(SCOPE_TOKEN_PATTERN)
# RFC 9068 §2.2 and Auth0's own: what the server sets, never a hook.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "client_id", "scope", "gty"}
)
_URL = re.compile(r"https?://\S+")
MAX_CLAIMS_BYTES = 16 * 1024
# The errors a token hook may refuse with on purpose (RFC 6749 §5.2 codes).
DENIAL_CODES = ("invalid_scope", "invalid_request", "server_error")


def is_custom_claim(name: str) -> bool:
    """Whether a hook's key names a custom claim: an http(s) URL, as Auth0 namespaces them."""
    return _URL.fullmatch(name) is not None


@dataclass(frozen=True)
class TokenState:
    scopes: tuple[str, ...]
    claims: dict[str, Any] = field(default_factory=dict)
    # The scopes the API defines: a hook may add those (as in Auth0), no others.
    # None: no bound (a runner event that does not say).
    defined: frozenset[str] | None = None


def initial(scope: Sequence[str], api_scopes: Sequence[str] | None) -> TokenState:
    """The scopes granted so far; the API's defined scopes bound what hooks may add."""
    return TokenState(tuple(scope), defined=None if api_scopes is None else frozenset(api_scopes))


def merge(state: TokenState, output: Any) -> tuple[TokenState, list[str]]:
    if output is None:
        return state, []
    if not isinstance(output, dict):
        raise BadOutput(f"the hook must return a dict (or None), not {type(output).__name__}")
    notes: list[str] = []
    scopes = state.scopes
    claims = dict(state.claims)
    for key, value in output.items():
        if key == "scope":
            if value is None:
                continue
            if not isinstance(value, list) or not all(
                isinstance(item, str) and SCOPE_TOKEN.match(item) for item in value
            ):
                raise BadOutput("scope must be a list of scope strings (no spaces or quotes)")
            scopes = tuple(dict.fromkeys(value))
            if state.defined is not None:
                undefined = [item for item in scopes if item not in state.defined]
                if undefined:
                    notes.append(
                        f"scope {' '.join(undefined)} was dropped: the API does not define it"
                    )
                    scopes = tuple(item for item in scopes if item in state.defined)
        elif is_custom_claim(key):
            claims[key] = value
        elif key in RESERVED_CLAIMS:
            notes.append(f"claim {key!r} is set by the server and cannot be overwritten")
        else:
            notes.append(
                f"key {key!r} was ignored: custom claims must be namespaced with an "
                "http(s) URL, such as 'https://example.com/tier'"
            )
    if len(json.dumps(claims)) > MAX_CLAIMS_BYTES:
        raise BadOutput(f"custom claims exceed {MAX_CLAIMS_BYTES} bytes")
    return TokenState(scopes, claims, state.defined), notes


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    audience: str | list[str],
    client_id: str,
    scopes: Sequence[str],
    grant: str,
    custom: Mapping[str, Any],
    issued_at: int,
    lifetime: int,
    jti: str,
) -> dict[str, Any]:
    """An RFC 9068 access token's claims: the custom ones first, so that none can
    replace those the server sets. The issuer signs these; the runner shows them."""
    claims: dict[str, Any] = {
        **custom,
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": jti,
        "client_id": client_id,
        "azp": client_id,
    }
    if grant:  # Auth0's grant type claim, set for machine and password grants only
        claims["gty"] = grant
    if scopes:
        claims["scope"] = " ".join(scopes)
    return claims


def refuse(hook: str, denial: Denial | None, failure: str) -> Refusal:
    """A deliberate refusal with one of DENIAL_CODES is that OAuth 2.0 error, described
    by the hook's user message (else its message); anything else is a server_error
    naming the hook and what went wrong, never a traceback or a path."""
    if denial is not None and denial.code in DENIAL_CODES:
        description = denial.user_message or denial.message or f"refused by hook {hook!r}"
        return Refusal(denial.code, description, denial)
    return Refusal("server_error", f"hook {hook!r} failed: {failure.replace('_', ' ')}", denial)


# --- the Actions convention's api -------------------------------------------------------


def _set_custom_claim(state: TokenState, output: Output, args: Sequence[Any]) -> None:
    if len(args) != 2 or not isinstance(args[0], str):
        raise BadOutput("api.access_token.set_custom_claim takes (name, value)")
    output[args[0]] = args[1]


def _scope_change(add: bool) -> Command:
    def change(state: TokenState, output: Output, args: Sequence[Any]) -> None:
        name = "add_scope" if add else "remove_scope"
        if len(args) != 1 or not isinstance(args[0], str):
            raise BadOutput(f"api.access_token.{name} takes (scope)")
        scopes = list(output.get("scope", state.scopes))
        if add and args[0] not in scopes:
            scopes.append(args[0])
        elif not add:
            scopes = [scope for scope in scopes if scope != args[0]]
        output["scope"] = scopes

    return change


def _deny(state: TokenState, output: Output, args: Sequence[Any]) -> None:
    """Auth0's ``api.access.deny(code, reason)``; ``deny(reason)`` is invalid_request."""
    if len(args) == 1 and isinstance(args[0], str):
        code, reason = "invalid_request", args[0]
    elif len(args) == 2 and all(isinstance(arg, str) for arg in args):
        code, reason = args
    else:
        raise BadOutput("api.access.deny takes (code, reason)")
    if code not in DENIAL_CODES:
        raise BadOutput(f"api.access.deny: code must be one of {', '.join(DENIAL_CODES)}")
    raise Denied(Denial(code, reason, reason))


API: Mapping[str, Mapping[str, Command]] = {
    "access_token": {
        "set_custom_claim": _set_custom_claim,
        "add_scope": _scope_change(add=True),
        "remove_scope": _scope_change(add=False),
    },
    "access": {"deny": _deny},
}
