"""Parsing a token request body (RFC 6749 §3.2, Appendix B), form-encoded as the
RFC requires, or JSON as Auth0 also accepts (its SDKs send JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authhooks.identity.oauth2.errors import InvalidRequestError
from authhooks.points import shapes

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 16 * 1024
MAX_VALUE_CHARS = 2048


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The request parameters, from a form or a JSON object: each at most once,
    each a string, empty ones treated as omitted."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in (FORM_CONTENT_TYPE, JSON_CONTENT_TYPE):
        raise InvalidRequestError(
            f"the request body must be {FORM_CONTENT_TYPE} (or {JSON_CONTENT_TYPE})"
        )
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequestError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    pairs = _json_pairs(body) if media_type == JSON_CONTENT_TYPE else _form_pairs(body)
    seen: set[str] = set()
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in seen:
            # RFC 6749 §3.2: parameters MUST NOT be included more than once.
            raise InvalidRequestError(f"parameter {name!r} is repeated")
        seen.add(name)
        if "\x00" in name or "\x00" in value:
            raise InvalidRequestError(f"parameter {name!r} holds a NUL character")
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidRequestError(
                f"parameter {name!r} is longer than {MAX_VALUE_CHARS} characters"
            )
        if value:  # RFC 6749 §3.1: a parameter sent without a value is treated as omitted
            params[name] = value
    return params


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the request body is not valid form encoding") from None


def _json_pairs(body: bytes) -> list[tuple[str, str]]:
    """A JSON object's members, in order and with repeats (refused by the caller, as
    a form's are); every value a string, as a form's would be. ``null`` is
    omitted, as an empty form value is."""
    try:
        members = json.loads(body.decode("utf-8"), object_pairs_hook=_Members)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequestError("the request body is not valid JSON") from None
    if not isinstance(members, _Members):
        raise InvalidRequestError("the request body must be a JSON object")
    pairs = []
    for name, value in members:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidRequestError(f"parameter {name!r} must be a string")
        pairs.append((name, value))
    return pairs


class _Members(list[tuple[str, Any]]):
    """A JSON object as json.loads reads it with object_pairs_hook: all its members."""


@dataclass(frozen=True)
class RequestInfo:
    """What hooks may know of the HTTP request (``context.request``)."""

    ip: str | None = None
    user_agent: str | None = None
    hostname: str | None = None
    language: str | None = None

    def hook_view(self) -> shapes.Request:
        return shapes.Request(
            ip=self.ip, user_agent=self.user_agent, hostname=self.hostname, language=self.language
        )
