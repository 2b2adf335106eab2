"""The ASGI application, assembled from the identity server's routes (web/), the
management API (api/) and the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authhooks import __version__
from authhooks.api import (
    admins,
    client_grants,
    errors,
    git_sources,
    hooks,
    jobs,
    logs,
    points,
    resource_servers,
    tenant,
    tickets,
    users,
)
from authhooks.api import clients as clients_api
from authhooks.config import Settings
from authhooks.dashboard import pages as dashboard_pages
from authhooks.dashboard import routes as dashboard
from authhooks.observability import http as metrics_http
from authhooks.observability.server_log import RequestIds
from authhooks.services import Services
from authhooks.serving import follow_parent
from authhooks.web import authorize, dbconnections, git_webhooks, health, logout, oauth
from authhooks.web.pages import email_verification as verification_page
from authhooks.web.pages import render as hosted_pages
from authhooks.web.pages import reset_password as reset_page

OPENAPI_URL = "/api/v2/openapi.json"
DOCS_URL = "/api/v2/docs"


class FastPath:
    """Serves the identity server's routes directly and everything else through FastAPI.

    Token requests are the hot path: going straight to their handler skips the
    middleware stack and route matching of the management API, a measurable
    share of each request (bench/README.md).
    """

    def __init__(self, app: FastAPI, routes: list[Route]) -> None:
        self.app = app
        self._routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in (route.methods or ()):
            allowed = ", ".join(sorted(route.methods or ()))
            response = JSONResponse(
                {"error": "method_not_allowed", "error_description": f"use {allowed}"},
                status_code=405,
                headers={"Allow": allowed},
            )
            await response(scope, receive, send)
            return
        scope["app"] = self.app
        response = await route.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The app for one server process; the schema and keys must exist (``authhooks init``)."""
    follow_parent()
    services = Services.create(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="authhooks Management API",
        version=__version__,
        openapi_url=OPENAPI_URL,
        # FastAPI's own docs page loads Swagger UI from a CDN: the dashboard serves
        # one built with its assets instead (dashboard/pages.py).
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    management = APIRouter(prefix="/api/v2")
    for module in (
        clients_api,
        resource_servers,
        client_grants,
        hooks,
        git_sources,
        points,
        logs,
        users,
        admins,
        tickets,
        jobs,
    ):
        management.include_router(module.router)
    management.include_router(users.by_email)
    management.include_router(tenant.router)
    app.include_router(management)
    app.include_router(dashboard.router)
    app.router.routes.extend(health.routes())
    app.router.routes.extend(git_webhooks.routes())
    app.router.routes.extend(hosted_pages.routes())
    app.router.routes.extend(reset_page.routes() + verification_page.routes())
    app.router.routes.extend(dashboard_pages.routes(DOCS_URL, OPENAPI_URL))
    fast = FastPath(
        app,
        oauth.routes()
        + authorize.routes()
        + logout.routes()
        + dbconnections.routes()
        + metrics_http.routes(services.settings),
    )
    return RequestIds(fast)
