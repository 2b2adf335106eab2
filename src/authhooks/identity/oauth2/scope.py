"""The scope parameter (RFC 6749 §3.3)."""

from __future__ import annotations

import re

from authhooks.identity.oauth2.errors import InvalidScopeError

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), anchored for validators that search.
SCOPE_TOKEN_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]+$"
SCOPE_TOKEN = re.compile(SCOPE_TOKEN_PATTERN)


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
