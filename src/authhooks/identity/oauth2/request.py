"""Parsing a token request body (RFC 6749 §3.2, Appendix B)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from authhooks.identity.oauth2.errors import InvalidRequestError
from authhooks.points import shapes

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16 * 1024
MAX_VALUE_CHARS = 2048


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The request parameters: each at most once, empty ones treated as omitted."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"the request body must be {FORM_CONTENT_TYPE}")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequestError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the request body is not valid form encoding") from None
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
