"""Signing out: OpenID Connect RP-Initiated Logout 1.0 (``/oidc/logout``) and
Auth0's ``/v2/logout``.

``/oidc/logout`` with an ``id_token_hint`` of the person signed in ends their
session at once; without one, the person is asked first (a page whose form
carries a token only this browser's session cookie can match), so that another
site cannot sign people out. A ``post_logout_redirect_uri`` must be one of the
client's ``allowed_logout_urls``, exactly. Auth0's ``/v2/logout`` ends the
session at once, as Auth0's does, and returns to ``returnTo`` on the same
condition.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qsl

from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authhooks.http import BodyTooLarge, read_bounded
from authhooks.identity.authorization import with_query
from authhooks.identity.grant_state import hash_secret
from authhooks.identity.id_tokens import InvalidIdTokenHint, verify_id_token_hint
from authhooks.identity.sessions import COOKIE as SESSION_COOKIE
from authhooks.services import Services
from authhooks.web.pages.render import error_page, form_target, page

log = logging.getLogger(__name__)

_MAX_FORM_BYTES = 16 * 1024
_CARRIED = ("post_logout_redirect_uri", "state", "client_id")


class LogoutRefused(Exception):
    pass


async def oidc_logout(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        params = await _params(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        client_id, hinted_session = await _hint(services, params)
        target = await _return_to(
            services, client_id, params.get("post_logout_redirect_uri"), params.get("state")
        )
        signed_in = await services.sign_in.session_of(cookie)
        confirmed = request.method == "POST" and params.get("decision") == "logout"
        if confirmed and not (cookie and _csrf_matches(cookie, params.get("csrf"))):
            raise LogoutRefused("This sign-out form has expired: try again.")
        # At once only for an ID token of this very session (its ``sid``).
        hinted = signed_in is not None and hinted_session == signed_in.id
        if signed_in is not None and not (hinted or confirmed):
            client = await services.directory.client(client_id) if client_id else None
            # The application as the hint named it, so that the confirmation still knows.
            carried = [(name, params[name]) for name in _CARRIED if name in params]
            if client_id is not None and "client_id" not in params:
                carried.append(("client_id", client_id))
            return page(
                "logout.html",
                {
                    "title": "Sign out",
                    "client_name": client.name if client else "",
                    "csrf": _csrf(cookie or ""),
                    "carried": carried,
                },
                form_targets=[form_target(target)] if target else (),
            )
        if signed_in is not None:
            await services.sign_in.end_session(signed_in.id)
        return _signed_out(services, target)
    except LogoutRefused as refused:
        return error_page("Cannot sign out", str(refused))
    except BodyTooLarge as too_large:
        return error_page("Cannot sign out", str(too_large), 413)
    except ClientDisconnect:
        return Response(status_code=400)
    except DBAPIError as error:
        log.error("logout: database unavailable (%s)", type(error.orig).__name__)
        return error_page("Try again shortly", "The service is unavailable.", 503)
    except Exception:
        log.exception("logout: unexpected error")
        return error_page("Something went wrong", "An internal error occurred.", 500)


async def auth0_logout(request: Request) -> Response:
    """GET /v2/logout?client_id=…&returnTo=…: Auth0's, which asks nothing."""
    services: Services = request.app.state.services
    try:
        params = dict(parse_qsl(request.url.query))
        target = await _return_to(services, params.get("client_id"), params.get("returnTo"), None)
        signed_in = await services.sign_in.session_of(request.cookies.get(SESSION_COOKIE))
        if signed_in is not None:
            await services.sign_in.end_session(signed_in.id)
        return _signed_out(services, target)
    except LogoutRefused as refused:
        return error_page("Cannot sign out", str(refused))
    except DBAPIError as error:
        log.error("logout: database unavailable (%s)", type(error.orig).__name__)
        return error_page("Try again shortly", "The service is unavailable.", 503)


async def _params(request: Request) -> dict[str, str]:
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise LogoutRefused("Send the form as application/x-www-form-urlencoded.")
        body = await read_bounded(request.headers, request.stream(), _MAX_FORM_BYTES)
        pairs += parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise LogoutRefused(f"The parameter {name} is repeated: send it once.")
        if "\0" in value or "\0" in name:
            raise LogoutRefused("A parameter holds a NUL character.")
        if value:
            params[name] = value
    return params


async def _hint(services: Services, params: dict[str, str]) -> tuple[str | None, str | None]:
    """(client_id, the hint's session) from id_token_hint and client_id."""
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint is None:
        return client_id, None
    keys = await services.directory.keys()
    try:
        claims = verify_id_token_hint(hint, keys.public, services.settings.issuer)
    except InvalidIdTokenHint as error:
        raise LogoutRefused(str(error)) from None
    hinted_client = str(claims["aud"])
    if client_id is not None and hinted_client != client_id:
        raise LogoutRefused("client_id differs from the id_token_hint's audience")
    if await services.directory.client(hinted_client) is None:
        raise LogoutRefused("id_token_hint names an application that no longer exists")
    return hinted_client, str(claims["sid"])


async def _return_to(
    services: Services, client_id: str | None, uri: str | None, state: str | None
) -> str | None:
    if uri is None:
        return None
    client = await services.directory.client(client_id) if client_id else None
    if client is None:
        raise LogoutRefused(
            "Name the application (client_id or id_token_hint) to return to it after signing out."
        )
    if uri not in client.allowed_logout_urls:
        raise LogoutRefused(f"{uri[:200]} is not one of the application's allowed logout URLs.")
    return with_query(uri, {"state": state}) if state is not None else uri


def _signed_out(services: Services, target: str | None) -> Response:
    response: Response
    if target is not None:
        response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    else:
        response = page("message.html", {"title": "Signed out", "message": "You are signed out."})
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=services.settings.issuer.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


def _csrf(cookie: str) -> str:
    # Only this browser holds the cookie, so only its page can hold this.
    return hash_secret("logout:" + cookie)


def _csrf_matches(cookie: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(_csrf(cookie).encode(), token.encode())


def routes() -> list[Route]:
    return [
        Route("/oidc/logout", oidc_logout, methods=["GET", "POST"]),
        Route("/v2/logout", auth0_logout, methods=["GET"]),
    ]
