"""Shared rules of the token points (credentials-exchange, password-exchange).

A hook returns a dict: ``scope`` (a list) replaces the scopes so far, and keys
that are http(s) URLs become custom claims, as in Auth0 Hooks. Everything else
is ignored with a note in the hook's log. Claims the server sets can never be
overwritten: they are not URLs, so they never become claims, and a hook that
tries is told so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from authhooks.points.base import BadOutput

RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "client_id", "scope", "gty"}
)
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_URL = re.compile(r"https?://\S+")
MAX_CLAIMS_BYTES = 16 * 1024


@dataclass(frozen=True)
class TokenState:
    scopes: tuple[str, ...]
    claims: dict[str, Any] = field(default_factory=dict)
    # The scopes the API defines: a hook may add those (as in Auth0), no others.
    # None only for a runner's test event that does not say (``api_scopes`` left out).
    defined: frozenset[str] | None = None


def initial(event: Any) -> TokenState:
    """The scopes granted so far; the API's defined scopes bound what hooks may add.
    An API that defines no scopes (an empty list) allows none."""
    defined = event.get("api_scopes")
    return TokenState(
        tuple(event["scope"]), defined=frozenset(defined) if defined is not None else None
    )


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
                isinstance(item, str) and _SCOPE_TOKEN.match(item) for item in value
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
        elif _URL.fullmatch(key):
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
