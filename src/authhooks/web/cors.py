"""CORS for the endpoints a single-page app calls from the browser (the token,
userinfo and revocation endpoints): an origin some client registered in
``web_origins`` or ``allowed_origins`` may call them; no other may read the
answers. Credentials (cookies) are never allowed: these endpoints take none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from authhooks.services import Services

Endpoint = Callable[[Request], Awaitable[Response]]
_ALLOWED_HEADERS = "Authorization, Content-Type, Auth0-Client"


def allow_registered_origins(endpoint: Endpoint, methods: str) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        origin = request.headers.get("origin")
        allowed = origin is not None and origin in await _origins(request)
        if request.method == "OPTIONS":
            if not allowed:
                return Response(status_code=403)
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": str(origin),
                    "Access-Control-Allow-Methods": methods,
                    "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await endpoint(request)
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = str(origin)
            response.headers["Vary"] = "Origin"
        return response

    return wrapped


async def _origins(request: Request) -> frozenset[str]:
    services: Services = request.app.state.services
    return await services.directory.web_origins()
