"""The dashboard's page and its built assets, served at /dashboard.

The assets are built from ``frontend/`` into ``static/`` by ``make run`` and
``make test`` (npm, pinned by its lock file) and served from here: no CDN, so
the dashboard works offline. The page's Content-Security-Policy allows only
this server's own scripts, styles and API, so that even text that slipped
past rendering could not run as code.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csp-nonce" content="{nonce}">
<title>authhooks</title>
<link rel="stylesheet" href="/dashboard/static/app.css">
</head>
<body>
<div id="app"></div>
<script src="/dashboard/static/app.js"></script>
</body>
</html>
"""

_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # The editor adds its own style sheets, with this page's nonce.
        "style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


async def page(request: Request) -> Response:
    if not (STATIC / "app.js").exists():
        return PlainTextResponse(
            "the dashboard is not built: `make run` builds it (it needs Node.js and npm)",
            status_code=503,
        )
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(
        _PAGE.replace("{nonce}", nonce),
        headers={
            "Content-Security-Policy": _POLICY.replace("{nonce}", nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[Route | Mount]:
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", page, methods=["GET"]),
        Mount("/dashboard/static", StaticFiles(directory=STATIC, check_dir=False)),
    ]
