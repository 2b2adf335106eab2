"""The page a password reset link opens, at Auth0's path: ``GET /lo/reset?ticket=…``
shows a form (the new password, twice), ``POST /lo/reset`` sets it.

A link that is forged, expired or used gets a page saying so (400), never the
form. The form is protected against cross-site posting twice over: a hidden
field bound to the ticket (a keyed hash of it, which only this server can
make), and the browser's word on where the post comes from (``Origin``, which
the pages' same-origin referrer policy lets browsers send, and
``Sec-Fetch-Site``), as the sign-in forms check it. Its CSP lets it post
nowhere but here.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qsl, urlsplit

from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from authhooks.http import BodyRefused, read_bounded
from authhooks.masterkey import SecretHasher
from authhooks.services import Services
from authhooks.users.password_reset import RESET_PATH
from authhooks.users.policy import MAX_PASSWORD_LENGTH, WeakPassword
from authhooks.users.tickets import TicketRefused
from authhooks.web.pages.render import error_page, page
from authhooks.web.request_info import request_info

log = logging.getLogger(__name__)

TITLE = "Reset your password"
MAX_BODY_BYTES = 16 * 1024
# What the key of the form field bound to a ticket is derived for, from the master key.
FORM_KEY_PURPOSE = "password-reset-form"
_FORM = "application/x-www-form-urlencoded"
NOT_FROM_HERE = "This form was not sent from this site. Open the link in your mail again."


async def show(request: Request) -> Response:
    """GET /lo/reset?ticket=…: the form, if the ticket is good."""
    services: Services = request.app.state.services
    ticket = request.query_params.get("ticket", "")
    try:
        email = await run_sync(services.password_reset.email_for, ticket)
    except TicketRefused as refused:
        return error_page(TITLE, str(refused))
    except DBAPIError:
        return _unavailable()
    return _form(services, ticket, email)


async def submit(request: Request) -> Response:
    """POST /lo/reset: set the new password, if the ticket is good and the form is ours."""
    services: Services = request.app.state.services
    if not _from_this_site(request, services.settings.issuer):
        return error_page(TITLE, NOT_FROM_HERE, 403)
    if _media_type(request.headers.get("content-type")) != _FORM:
        return error_page(TITLE, "The form was not sent as a form.", 415)
    try:
        body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except ClientDisconnect:
        return Response(status_code=400)
    except (BodyRefused, UnicodeDecodeError, ValueError):
        return error_page(TITLE, "The form could not be read. Open the link in your mail again.")
    fields = dict(pairs)
    if len(fields) != len(pairs):
        return error_page(TITLE, "A field of the form was sent twice.")
    ticket = fields.get("ticket", "")
    new = fields.get("newPassword", "")
    try:
        email = await run_sync(services.password_reset.email_for, ticket)
        if not hmac.compare_digest(fields.get("_csrf", ""), _form_token(services, ticket)):
            return error_page(TITLE, NOT_FROM_HERE, 403)
        if new != fields.get("confirmNewPassword", ""):
            return _form(services, ticket, email, error="The two passwords are not the same.")
        if not new:
            return _form(services, ticket, email, error="Type a new password.")
        done = await services.password_reset.reset(ticket, new, request_info(request))
    except TicketRefused as refused:
        return error_page(TITLE, str(refused))
    except WeakPassword as weak:
        return _form(services, ticket, email, rules=weak)
    except DBAPIError:
        return _unavailable()
    return page(
        "message.html",
        {
            "title": "Password changed",
            "message": "Your password has been changed. You can now sign in with it.",
            "continue_url": done.result_url,
        },
    )


def _form(
    services: Services,
    ticket: str,
    email: str,
    *,
    error: str | None = None,
    rules: WeakPassword | None = None,
) -> HTMLResponse:
    return page(
        "reset_password.html",
        {
            "title": TITLE,
            "email": email,
            "ticket": ticket,
            "csrf": _form_token(services, ticket),
            "action": services.settings.issuer + RESET_PATH,
            "min_length": services.settings.password_min_length,
            "max_length": MAX_PASSWORD_LENGTH,
            "error": error,
            "rules": rules.rules if rules is not None else None,
        },
        status_code=400 if error or rules else 200,
    )


def _form_token(services: Services, ticket: str) -> str:
    """The hidden field bound to ``ticket``: only this server can make it."""
    hasher = SecretHasher(services.master_key.derive(FORM_KEY_PURPOSE))
    return hasher.hash(ticket).hex()


def _from_this_site(request: Request, issuer: str) -> bool:
    """Whether the browser says the post comes from this server's pages: its origin
    is the issuer's, or the one the request was sent to. Clients that are not
    browsers send neither header."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(issuer)
    own = {f"{parts.scheme}://{parts.netloc}", f"{request.url.scheme}://{request.url.netloc}"}
    return origin.lower() in {each.lower() for each in own}


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _unavailable() -> HTMLResponse:
    log.error("password reset page: database unavailable")
    return error_page(TITLE, "The service is unavailable just now. Try again in a moment.", 503)


def routes() -> list[Route]:
    return [
        Route("/" + RESET_PATH, show, methods=["GET"]),
        Route("/" + RESET_PATH, submit, methods=["POST"]),
    ]
