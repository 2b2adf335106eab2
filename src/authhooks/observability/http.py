"""GET /metrics on the server's own port, behind a scrape token; or the same
figures on a separate port (``metrics_port``), for a network only the
scraper reaches. Off unless one of the two is configured."""

from __future__ import annotations

import hmac
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authhooks.config import Settings
from authhooks.observability import metrics

log = logging.getLogger(__name__)


def routes(settings: Settings) -> list[Route]:
    token = settings.metrics_token.encode() if settings.metrics_token else None

    async def scrape(request: Request) -> Response:
        if token is None:
            where = (
                f"on port {settings.metrics_port}"
                if settings.metrics_port
                else "off: set AUTHHOOKS_METRICS_TOKEN or AUTHHOOKS_METRICS_PORT"
            )
            return JSONResponse({"error": "not_found", "message": f"metrics are {where}"}, 404)
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token):
            return JSONResponse(
                {"error": "unauthorized", "message": "send Authorization: Bearer <scrape token>"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        body = metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", metrics.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes are not worth a line each


def serve_separately(settings: Settings) -> ThreadingHTTPServer | None:
    """Start the metrics port in a background thread of this (the supervising)
    process, when one is configured."""
    if not settings.metrics_port:
        return None
    server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
