"""The dashboard's page and its built assets, served at /dashboard, and the
management API's reference (Swagger UI) at /api/v2/docs.

The assets are built from ``frontend/`` into ``static/`` by ``make run`` and
``make test`` (npm, pinned by its lock file) and served from here: no CDN, so
the pages work offline and no third party's script ever runs on this origin,
where an admin's session lives. Both pages carry the same
Content-Security-Policy, which allows only this server's own scripts, styles
and API, so that even text that slipped past rendering could not run as code.
"""

from __future__ import annotations

import html
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


# No inline script: Swagger UI starts from docs.js, which reads the description's
# URL from the page.
_DOCS = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authhooks Management API</title>
<link rel="stylesheet" href="/dashboard/static/docs.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/dashboard/static/docs.js"></script>
</body>
</html>
"""


def _html(text: str, bundle: str) -> Response:
    """``text`` (with ``{nonce}`` in it) under the policy, once ``bundle`` is built."""
    if not (STATIC / bundle).exists():
        return PlainTextResponse(
            "the dashboard's assets are not built: `make run` builds them "
            "(it needs Node.js and npm)",
            status_code=503,
        )
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(
        text.replace("{nonce}", nonce),
        headers={
            "Content-Security-Policy": _POLICY.replace("{nonce}", nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


async def page(request: Request) -> Response:
    return _html(_PAGE, "app.js")


def routes(docs_url: str, openapi_url: str) -> list[Route | Mount]:
    docs_page = _DOCS.replace("{openapi_url}", html.escape(openapi_url))

    async def docs(request: Request) -> Response:
        return _html(docs_page, "docs.js")

    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", page, methods=["GET"]),
        Route(docs_url, docs, methods=["GET"]),
        Mount("/dashboard/static", StaticFiles(directory=STATIC, check_dir=False)),
    ]
