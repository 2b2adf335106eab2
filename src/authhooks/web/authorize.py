"""``/authorize`` and the hosted sign-in pages: sign in (``/u/login``), sign up
(``/u/signup``) and consent (``/u/consent``).

/authorize answers at once when the person's session suffices; otherwise it
keeps the request in a transaction bound to this browser and sends the person
to a page. Each page's form repeats the transaction's id (``state``, as Auth0's
hosted pages call it) and its CSRF token; the browser's cookie must match too.
A request from another site's form carries neither the cookie (SameSite=Lax)
nor the token.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from authhooks.errors import Conflict, InvalidInput
from authhooks.http import BodyTooLarge, read_bounded
from authhooks.identity import transactions
from authhooks.identity.authorization import PageError, RedirectError, check_request
from authhooks.identity.directory import KnownClient
from authhooks.identity.mail.sender import MailOff
from authhooks.identity.sessions import COOKIE as SESSION_COOKIE
from authhooks.identity.sessions import SignedIn
from authhooks.identity.sign_in import NewSession, Waiting
from authhooks.services import Services
from authhooks.users.login import UserBlocked, WrongCredentials
from authhooks.users.policy import WeakPassword
from authhooks.users.registration import NewUser, SignupRefused
from authhooks.users.throttle import TooManyAttempts, TooManyResets, TooManySignups
from authhooks.web.pages.render import error_page, form_target, page
from authhooks.web.request_info import request_info

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024
_LOST = (
    "This sign-in has expired or was started in another browser. "
    "Go back to the application and sign in again."
)


class FormRefused(Exception):
    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


# --- /authorize ----------------------------------------------------------------


async def authorize(request: Request) -> Response:
    """GET or POST /authorize (RFC 6749 §4.1.1; OIDC Core §3.1.2.1 allows both)."""

    async def handle(services: Services) -> Response:
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            pairs += await _form_pairs(request)
        try:
            client, checked, _ = await check_request(
                services.directory,
                pairs,
                default_audience=services.settings.default_audience,
                management_audience=services.settings.management_audience,
            )
        except PageError as error:
            return error_page(error.title, error.message)
        except RedirectError as error:
            return _redirect(error.location(services.settings.issuer))
        sign_in = services.sign_in
        signed_in = await sign_in.session_of(request.cookies.get(SESSION_COOKIE))
        browser = request.cookies.get(transactions.BROWSER_COOKIE) or secrets.token_urlsafe(24)
        try:
            if sign_in.must_authenticate(checked, signed_in):
                waiting = await sign_in.wait(checked, browser)
                path = "/u/signup" if checked.screen_hint == "signup" else "/u/login"
                response = _redirect(f"{path}?{urlencode({'state': waiting.id})}")
                _browser_cookie(response, services, browser)
                return response
            assert signed_in is not None
            if await sign_in.needs_consent(client, checked, signed_in.user_id):
                waiting = await sign_in.wait(checked, browser, consent_by=signed_in.id)
                response = _redirect(f"/u/consent?{urlencode({'state': waiting.id})}")
                _browser_cookie(response, services, browser)
                return response
            location = await sign_in.complete(checked, client, signed_in, request_info(request))
        except RedirectError as error:
            location = error.location(services.settings.issuer)
        return _redirect(location)

    return await _serve(request, handle)


# --- sign in -----------------------------------------------------------------


async def login_page(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        waiting, client = await _waiting(services, request, request.query_params.get("state"))
        return _login(services, waiting, client, username=waiting.request.login_hint or "")

    return await _serve(request, handle)


async def login(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        form = await _posted(request)
        waiting, client = await _checked_post(services, request, form)
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password:
            return _login(services, waiting, client, username, "Enter your email and password.")
        try:
            user = await services.login.authenticate(username, password, request_info(request).ip)
        except (WrongCredentials, UserBlocked):
            return _login(services, waiting, client, username, "Wrong email or password.")
        except TooManyAttempts as error:
            return _login(services, waiting, client, username, str(error), status_code=429)
        new = await services.sign_in.start_session(user, request_info(request))
        return await _signed_in(services, request, waiting, client, new)

    return await _serve(request, handle)


def _login(
    services: Services,
    waiting: Waiting,
    client: KnownClient,
    username: str,
    error: str = "",
    status_code: int | None = None,
) -> Response:
    state = urlencode({"state": waiting.id})
    return page(
        "login.html",
        {
            "title": "Sign in",
            "client_name": client.name,
            "state": waiting.id,
            "csrf": waiting.csrf_token,
            "username": username,
            "error": error,
            "signup_url": f"/u/signup?{state}" if _may_sign_up(services, client) else "",
            "reset_url": f"/u/reset-password?{state}" if services.outbox.enabled else "",
        },
        status_code=status_code or (400 if error else 200),
        form_targets=[form_target(waiting.request.redirect_uri)],
    )


# --- sign up -----------------------------------------------------------------


async def signup_page(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        waiting, client = await _waiting(services, request, request.query_params.get("state"))
        if not _may_sign_up(services, client):
            return _login(services, waiting, client, "", "Sign-up is not available here.")
        return _signup(waiting, client, email=waiting.request.login_hint or "")

    return await _serve(request, handle)


async def signup(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        form = await _posted(request)
        waiting, client = await _checked_post(services, request, form)
        if not _may_sign_up(services, client):
            return _login(services, waiting, client, "", "Sign-up is not available here.")
        email, password = form.get("email", ""), form.get("password", "")
        info = request_info(request)
        try:
            await run_sync(services.signup_throttle.reserve, info.ip)
            user = await services.registration.register(
                NewUser(email=email, password=password), info
            )
        except WeakPassword as weak:
            return _signup(waiting, client, email, "Choose a stronger password.", weak.rules)
        except Conflict:
            return _signup(waiting, client, email, "An account with this email already exists.")
        except InvalidInput as error:
            return _signup(waiting, client, email, str(error))
        except SignupRefused as refused:
            return _signup(waiting, client, email, str(refused), status_code=403)
        except TooManySignups as error:
            return _signup(waiting, client, email, str(error), status_code=429)
        # Signing up proves the password: the person is signed in.
        user = await services.login.signed_up(user)
        new = await services.sign_in.start_session(user, info)
        return await _signed_in(services, request, waiting, client, new)

    return await _serve(request, handle)


def _signup(
    waiting: Waiting,
    client: KnownClient,
    email: str,
    error: str = "",
    rules: Any = (),
    status_code: int | None = None,
) -> Response:
    return page(
        "signup.html",
        {
            "title": "Create your account",
            "client_name": client.name,
            "state": waiting.id,
            "csrf": waiting.csrf_token,
            "email": email,
            "error": error,
            "rules": list(rules),
            "login_url": f"/u/login?{urlencode({'state': waiting.id})}",
        },
        status_code=status_code or (400 if error else 200),
        form_targets=[form_target(waiting.request.redirect_uri)],
    )


def _may_sign_up(services: Services, client: KnownClient) -> bool:
    return services.settings.signup_enabled and client.signup_enabled


# --- forgot password ---------------------------------------------------------

# Auth0's answer, whether or not someone has this address.
RESET_SENT = "We've just sent you an email to reset your password."


async def forgot_page(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        waiting, _ = await _waiting(services, request, request.query_params.get("state"))
        if not services.outbox.enabled:
            raise FormRefused("Password reset by mail is not available here.", 404)
        return _forgot(waiting, waiting.request.login_hint or "")

    return await _serve(request, handle)


async def forgot(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        form = await _posted(request)
        waiting, _ = await _checked_post(services, request, form)
        email = form.get("email", "")
        try:
            await services.password_reset.request(email, request_info(request))
        except InvalidInput as error:
            return _forgot(waiting, email, str(error))
        except TooManyResets as error:
            return _forgot(waiting, email, str(error), status_code=429)
        except MailOff:
            raise FormRefused("Password reset by mail is not available here.", 404) from None
        return page(
            "message.html",
            {
                "title": "Check your email",
                "message": RESET_SENT,
                "continue_url": f"/u/login?{urlencode({'state': waiting.id})}",
            },
        )

    return await _serve(request, handle)


def _forgot(
    waiting: Waiting, email: str, error: str = "", status_code: int | None = None
) -> Response:
    return page(
        "forgot_password.html",
        {
            "title": "Forgot your password?",
            "state": waiting.id,
            "csrf": waiting.csrf_token,
            "email": email,
            "error": error,
            "login_url": f"/u/login?{urlencode({'state': waiting.id})}",
        },
        status_code=status_code or (400 if error else 200),
    )


# --- consent -----------------------------------------------------------------


async def consent_page(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        waiting, client = await _waiting(services, request, request.query_params.get("state"))
        await _consenting(services, request, waiting)
        return _consent(waiting, client)

    return await _serve(request, handle)


async def consent(request: Request) -> Response:
    async def handle(services: Services) -> Response:
        form = await _posted(request)
        waiting, client = await _checked_post(services, request, form)
        sign_in = services.sign_in
        signed_in = await _consenting(services, request, waiting)
        checked = waiting.request
        if form.get("decision") != "accept":
            denied = sign_in.denied(checked, "the person did not allow the application access")
            return _redirect(denied.location(services.settings.issuer), status_code=303)
        await sign_in.consent(signed_in.user_id, checked)
        try:
            location = await sign_in.complete(
                checked, client, signed_in, request_info(request), waiting.id
            )
        except RedirectError as error:
            location = error.location(services.settings.issuer)
        return _redirect(location, status_code=303)

    return await _serve(request, handle)


async def _consenting(services: Services, request: Request, waiting: Waiting) -> SignedIn:
    """The session whose consent the transaction waits for; FormRefused when it waits
    for a sign-in (a sign-in the application asked for cannot be skipped by going
    to this page) or the browser's session is another."""
    signed_in = await services.sign_in.session_of(request.cookies.get(SESSION_COOKIE))
    if (
        waiting.awaiting != transactions.CONSENT
        or signed_in is None
        or signed_in.id != waiting.session_id
    ):
        raise FormRefused(_LOST)
    return signed_in


def _consent(waiting: Waiting, client: KnownClient) -> Response:
    return page(
        "consent.html",
        {
            "title": "Allow access",
            "client_name": client.name,
            "scopes": list(waiting.request.scopes),
            "state": waiting.id,
            "csrf": waiting.csrf_token,
        },
        form_targets=[form_target(waiting.request.redirect_uri)],
    )


# --- shared steps ------------------------------------------------------------


async def _signed_in(
    services: Services,
    request: Request,
    waiting: Waiting,
    client: KnownClient,
    new: NewSession,
) -> Response:
    """After a sign-in or sign-up: consent if needed, else the code. A session this
    browser held before ends: the person signed in again, perhaps as someone else."""
    sign_in = services.sign_in
    earlier = await sign_in.session_of(request.cookies.get(SESSION_COOKIE))
    if earlier is not None:
        await sign_in.end_session(earlier.id)
    checked = waiting.request
    try:
        if await sign_in.needs_consent(client, checked, new.signed_in.user_id):
            await sign_in.await_consent(waiting, new.signed_in.id)
            response: Response = _redirect(
                f"/u/consent?{urlencode({'state': waiting.id})}", status_code=303
            )
        else:
            location = await sign_in.complete(
                checked, client, new.signed_in, request_info(request), waiting.id
            )
            response = _redirect(location, status_code=303)
    except RedirectError as error:
        # Refused (by a post-login hook, say): the person is not signed in either.
        await sign_in.end_session(new.signed_in.id)
        return _redirect(error.location(services.settings.issuer), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=new.max_age,
        httponly=True,
        secure=_secure(services),
        samesite="lax",
        path="/",
    )
    return response


async def _waiting(
    services: Services, request: Request, state: str | None
) -> tuple[Waiting, KnownClient]:
    try:
        waiting = await services.sign_in.waiting(
            state, request.cookies.get(transactions.BROWSER_COOKIE)
        )
    except transactions.TransactionLost:
        raise FormRefused(_LOST) from None
    client = await services.directory.client(waiting.request.client_id)
    if client is None:
        raise FormRefused("The application no longer exists.")
    return waiting, client


async def _checked_post(
    services: Services, request: Request, form: dict[str, str]
) -> tuple[Waiting, KnownClient]:
    """The transaction a posted form belongs to, its origin and CSRF token checked."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(services, request):
        raise FormRefused("This form was sent from another site.", 403)
    waiting, client = await _waiting(services, request, form.get("state"))
    if not transactions.csrf_matches(waiting.csrf_token, form.get("csrf")):
        raise FormRefused("This form has expired: go back and try again.", 403)
    return waiting, client


def _own_origins(services: Services, request: Request) -> set[str]:
    issuer = urlsplit(services.settings.issuer)
    return {f"{issuer.scheme}://{issuer.netloc}", f"{request.url.scheme}://{request.url.netloc}"}


async def _posted(request: Request) -> dict[str, str]:
    pairs = await _form_pairs(request)
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise FormRefused(f"The field {name} was sent twice.")
        if "\0" in value or "\0" in name:
            raise FormRefused("The form holds a NUL character.")
        form[name] = value
    return form


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormRefused("Send the form as application/x-www-form-urlencoded.", 415)
    body = await read_bounded(request.headers, request.stream(), MAX_FORM_BYTES)
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FormRefused("The form is not UTF-8.") from None


def _redirect(location: str, status_code: int = 302) -> Response:
    return RedirectResponse(
        location, status_code=status_code, headers={"Cache-Control": "no-store"}
    )


def _browser_cookie(response: Response, services: Services, browser: str) -> None:
    response.set_cookie(
        transactions.BROWSER_COOKIE,
        browser,
        httponly=True,
        secure=_secure(services),
        samesite="lax",
        path="/",
    )


def _secure(services: Services) -> bool:
    return services.settings.issuer.startswith("https://")


async def _serve(request: Request, handle: Callable[[Services], Awaitable[Response]]) -> Response:
    services: Services = request.app.state.services
    try:
        return await handle(services)
    except FormRefused as refused:
        return error_page("Something went wrong", str(refused), refused.status_code)
    except BodyTooLarge as too_large:
        return error_page("Something went wrong", str(too_large), 413)
    except ClientDisconnect:
        return Response(status_code=400)
    except IntegrityError:
        # What the request named was deleted meanwhile (the application, say).
        return error_page("Something went wrong", "The application no longer exists.", 400)
    except DBAPIError as error:
        log.error("sign-in: database unavailable (%s)", type(error.orig).__name__)
        return error_page("Try again shortly", "The service is unavailable.", 503)
    except Exception:
        log.exception("sign-in: unexpected error")
        return error_page("Something went wrong", "An internal error occurred.", 500)


def _by_method(
    show: Callable[[Request], Awaitable[Response]], post: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    # One route per path (app.FastPath): a page, and its form posted back to it.
    async def endpoint(request: Request) -> Response:
        return await (post(request) if request.method == "POST" else show(request))

    return endpoint


def routes() -> list[Route]:
    return [
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/u/login", _by_method(login_page, login), methods=["GET", "POST"]),
        Route("/u/signup", _by_method(signup_page, signup), methods=["GET", "POST"]),
        Route("/u/consent", _by_method(consent_page, consent), methods=["GET", "POST"]),
        Route("/u/reset-password", _by_method(forgot_page, forgot), methods=["GET", "POST"]),
    ]
