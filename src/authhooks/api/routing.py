"""Strict request bodies for the management API: JSON only, bounded, no repeated keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from authhooks.api.errors import ApiError

MAX_BODY_BYTES = 256 * 1024


class StrictJSONRoute(APIRoute):
    """Rejects a body that is not JSON, too large, or repeats a key, before FastAPI sees it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            await check_json_body(request)
            return await handler(request)

        return strict_handler


async def check_json_body(request: Request) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if not body:
        raise ApiError(400, "Payload validation error: a JSON body is required", "invalid_body")
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "the request body must be application/json", "unsupported_media_type")
    try:
        json.loads(body, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            400, f"Payload validation error: invalid JSON: {error}", "invalid_body"
        ) from None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} is repeated")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_large() -> ApiError:
    return ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", "too_large")
