"""Liveness and readiness probes."""

from __future__ import annotations

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


async def healthz(_: Request) -> JSONResponse:
    """The process is up and its event loop answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The process can serve: its database answers."""
    try:
        await run_sync(request.app.state.services.database.ping)
    except Exception as error:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable ({type(error).__name__})"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
