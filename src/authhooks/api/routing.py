"""Strict requests for the management API: authenticated first, no NUL in the path or
query, bodies JSON only, bounded, with no repeated keys (authhooks.http)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from authhooks.api.auth import authenticate
from authhooks.api.errors import InvalidRequest
from authhooks.http import check_json_body, read_bounded

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
                try:
                    body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
                except ClientDisconnect:  # the caller left mid-body: nobody reads the answer
                    return Response(status_code=400)
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
        raise InvalidRequest("NUL characters are not allowed in the path or query")
