"""The ASGI application, assembled from the identity routes and the management API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from authhooks import __version__, health
from authhooks.api import client_grants, errors, resource_servers
from authhooks.api import clients as clients_api
from authhooks.config import Settings
from authhooks.identity import http as identity_http
from authhooks.services import Services


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for one server process; the schema and keys must exist (``authhooks init``)."""
    services = Services.start(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="authhooks Management API",
        version=__version__,
        openapi_url="/api/v2/openapi.json",
        docs_url="/api/v2/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    management = APIRouter(prefix="/api/v2")
    for module in (clients_api, resource_servers, client_grants):
        management.include_router(module.router)
    app.include_router(management)
    app.router.routes.extend(identity_http.routes())
    app.router.routes.extend(health.routes())
    return app
