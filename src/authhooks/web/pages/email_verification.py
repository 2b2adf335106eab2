"""The page an email verification link opens, at Auth0's path:
``GET /u/email-verification?ticket=…`` marks the address verified, once.

With a ``result_url`` (a ticket from the management API) the person is sent
there, as Auth0 does, with ``success`` and ``message`` in the query string;
otherwise a page says what happened.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authhooks.services import Services
from authhooks.users.email_verification import VERIFY_PATH
from authhooks.users.tickets import TicketRefused
from authhooks.web.pages.render import error_page, page, security_headers

log = logging.getLogger(__name__)

TITLE = "Verify your email address"
VERIFIED = "Your email was verified. You can continue using the application."


async def verify(request: Request) -> Response:
    services: Services = request.app.state.services
    ticket = request.query_params.get("ticket", "")
    try:
        done = await services.email_verification.verify(ticket)
    except TicketRefused as refused:
        return error_page(TITLE, str(refused))
    except DBAPIError:
        log.error("email verification page: database unavailable")
        return error_page(TITLE, "The service is unavailable just now. Try again in a moment.", 503)
    if done.result_url:
        return RedirectResponse(
            _with_query(done.result_url, success="true", message=VERIFIED),
            status_code=302,
            headers=security_headers(),
        )
    return page(
        "message.html", {"title": "Email verified", "message": VERIFIED, "continue_url": None}
    )


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


def routes() -> list[Route]:
    return [Route("/" + VERIFY_PATH, verify, methods=["GET"])]
