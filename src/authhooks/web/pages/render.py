"""Rendering a hosted page: Jinja2 templates (autoescaped) with the headers every
page carries.

The Content-Security-Policy allows nothing but this server's own stylesheet: no
scripts at all, no frames around the page, forms posting only here and, where a
page's form leads on to an application (sign-in redirects to its callback),
to that application's origin, since browsers check a form's redirects too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

STYLESHEET_PATH = "/pages/pages.css"
_STYLESHEET = (files(__package__) / "static" / "pages.css").read_bytes()

_templates = Environment(
    loader=PackageLoader(__package__, "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,  # a missing value is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)


def security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    form_action = " ".join(["'self'", *sorted(set(form_targets))])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Same-origin: forms then carry their Origin, which the pages check; no
        # other site learns a page's URL (it holds the transaction id).
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def form_target(uri: str) -> str:
    """The CSP source a form's redirect to ``uri`` needs: its origin, or for a
    native app's own scheme (``com.example.app:/callback``), the scheme."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def page(
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    form_targets: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page ``template`` rendered with ``context``."""
    html = _templates.get_template(template).render(stylesheet=STYLESHEET_PATH, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={**security_headers(form_targets), **(headers or {})},
    )


def error_page(title: str, message: str, status_code: int = 400) -> HTMLResponse:
    """A page that says what went wrong, where no application may be told (an
    unknown client, a redirect URI it did not register)."""
    return page("error.html", {"title": title, "message": message}, status_code=status_code)


async def stylesheet(_: Request) -> Response:
    return Response(
        _STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[Route]:
    return [Route(STYLESHEET_PATH, stylesheet, methods=["GET"])]
