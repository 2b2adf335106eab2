"""The scope parameter (RFC 6749 §3.3)."""

from __future__ import annotations

from authhooks.identity.oauth2.errors import InvalidScopeError
from authhooks.points.token import SCOPE_TOKEN


def parse_scope(value: str | None) -> list[str]:
    """The requested scope tokens in order, without repeats; [] when none was requested."""
    if value is None:
        return []
    tokens = value.split(" ")
    for token in tokens:
        if not SCOPE_TOKEN.fullmatch(token):
            raise InvalidScopeError(
                "scope must be scope tokens separated by single spaces, "
                "without quotes or backslashes"
            )
    return list(dict.fromkeys(tokens))


def is_scope_token(value: str) -> bool:
    return SCOPE_TOKEN.fullmatch(value) is not None
