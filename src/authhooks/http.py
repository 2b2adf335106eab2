"""Request bodies, read and checked the same way by every HTTP surface (the token
endpoint, /dbconnections, the management API), before any of them parses one.

Framework-free: each surface catches ``BodyRefused`` and answers in its own
shape; ``status`` and ``code`` are what the management API answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, ClassVar


class BodyRefused(Exception):
    """The request body cannot be taken; ``str(error)`` says why."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_body"


class BodyTooLarge(BodyRefused):
    status = 413
    code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class NotJSON(BodyRefused):
    """The body is declared as something other than JSON."""

    status = 415
    code = "unsupported_media_type"

    def __init__(self) -> None:
        super().__init__("the request body must be application/json")


class BadJSON(BodyRefused):
    """The body is missing, is not strict JSON, or holds text no column can store."""


async def read_bounded(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], limit: int
) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (chunked or not)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_json_body(content_type: str | None, body: bytes) -> None:
    """Refuse (NotJSON, BadJSON) a body that is empty, not application/json, not
    strict JSON (a repeated key, NaN or Infinity), or that holds NUL characters or
    unpaired surrogates anywhere."""
    if not body:
        raise BadJSON("Payload validation error: a JSON body is required")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise NotJSON()
    try:
        parsed = json.loads(body, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constants)
    except RecursionError:
        raise BadJSON("Payload validation error: invalid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadJSON(f"Payload validation error: invalid JSON: {error}") from None
    where = _bad_text_at(parsed, "")
    if where is not None:
        raise BadJSON(
            f"Payload validation error: {where or 'the body'} holds a NUL character "
            "or an unpaired surrogate (\\ud800-\\udfff)"
        )


def describe_validation_errors(errors: Iterable[Any]) -> tuple[str, str]:
    """A one-line message naming each bad field of a pydantic validation error, and
    Auth0's error code for where it was (body, query string, or elsewhere)."""
    parts = []
    where = "body"
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where = loc[0]
            loc = loc[1:]
        field = ".".join(loc)
        message = error.get("msg", "is invalid")
        if error.get("type") == "json_invalid":
            message = f"invalid JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
            field = ""
        parts.append(f"{field}: {message}" if field else message)
    code = {"body": "invalid_body", "query": "invalid_query_string"}.get(where, "invalid_request")
    prefix = "Payload validation error" if where == "body" else "Request validation error"
    return f"{prefix}: {'; '.join(parts)}", code


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} is repeated")
        result[key] = value
    return result


def _bad_text_at(value: Any, path: str) -> str | None:
    """The dotted path of the first string that is not storable text, or None: NUL
    (PostgreSQL refuses it) or an unpaired surrogate (not UTF-8 at all)."""
    if isinstance(value, str):
        return path if not _storable(value) else None
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not _storable(key):
                return path or "a key"
            children.append((f"{path}.{key}" if path else key, item))
    elif isinstance(value, list):
        children = [(f"{path}.{index}", item) for index, item in enumerate(value)]
    for child_path, item in children:
        found = _bad_text_at(item, child_path)
        if found is not None:
            return found
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
