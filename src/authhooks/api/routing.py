"""Strict request bodies for the management API: JSON only, bounded, no repeated keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from authhooks.api.auth import authenticate
from authhooks.api.errors import ApiError
from authhooks.http import read_bounded

MAX_BODY_BYTES = 256 * 1024


class StrictJSONRoute(APIRoute):
    """Authenticates the caller before reading anything else, then refuses NUL
    characters, and a body that is not JSON, too large or repeats a key —
    before FastAPI parses it."""

    # Management routes want a bearer token; the dashboard's session routes do not.
    bearer_token = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        expects_body = self.body_field is not None
        bearer_token = self.bearer_token

        async def strict_handler(request: Request) -> Response:
            if bearer_token:
                await authenticate(request)
            check_no_nul(request)
            if expects_body:
                body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
                check_json_body(request.headers.get("content-type"), body)
                request._body = body  # what FastAPI reads next; the stream is spent
            return await handler(request)

        return strict_handler


class UnauthenticatedJSONRoute(StrictJSONRoute):
    """The same checks of what is sent, for routes that authenticate in their own way."""

    bearer_token = False


def check_no_nul(request: Request) -> None:
    # No identifier or name legitimately holds NUL, and PostgreSQL refuses it in text.
    query_values = request.query_params.values()
    if "\x00" in request.url.path or any("\x00" in value for value in query_values):
        raise ApiError(
            400, "NUL characters are not allowed in the path or query", "invalid_request"
        )


def check_json_body(content_type: str | None, body: bytes) -> None:
    if not body:
        raise ApiError(400, "Payload validation error: a JSON body is required", "invalid_body")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "the request body must be application/json", "unsupported_media_type")
    try:
        parsed = json.loads(body, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(
            400, "Payload validation error: invalid JSON: nested too deeply", "invalid_body"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            400, f"Payload validation error: invalid JSON: {error}", "invalid_body"
        ) from None
    where = _bad_text_at(parsed, "")
    if where is not None:
        message = (
            f"Payload validation error: {where or 'the body'} holds a NUL character "
            "or an unpaired surrogate (\\ud800-\\udfff)"
        )
        raise ApiError(400, message, "invalid_body")


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
