"""/dashboard/session: sign in, who is signed in, a management token, sign out.

An admin signs in and gets a session cookie: HttpOnly (page scripts cannot read
it), SameSite=Strict, scoped to /dashboard, Secure when the issuer is https. An
admin is either an admin client, with its id and secret (the bootstrap admin,
say), or an admin user, with an email and a password (identity/admins.py). The
dashboard's pages then ask ``POST /dashboard/session/token`` for a short-lived
management access token (the client's own, with the scopes its grant holds; or
the admin user's, with the scopes it is allowed) and call /api/v2 with it like
any other client: the session adds no power of its own. Every request that
changes something carries the session's CSRF token in ``X-CSRF-Token`` (a page
of another origin can neither read it nor send the header without a CORS
preflight, which this server never grants), and a sign-in with an ``Origin``
must come from the server's own.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from anyio.to_thread import run_sync
from fastapi import APIRouter, Cookie, Depends, Header, Request, Response
from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from authhooks.api.auth import services
from authhooks.api.errors import AccessDenied, ApiError, RateLimited, Unauthorized
from authhooks.api.models import Body
from authhooks.api.routing import UnauthenticatedJSONRoute
from authhooks.dashboard import sessions
from authhooks.dashboard.sessions import SessionLimits, SignedIn
from authhooks.identity.admins import DASHBOARD_CLIENT_ID, AdminView, WrongAdminCredentials
from authhooks.identity.directory import KnownClient
from authhooks.identity.oauth2.client_auth import authenticate
from authhooks.identity.oauth2.errors import InvalidClientError
from authhooks.services import Services
from authhooks.users.policy import MAX_PASSWORD_LENGTH
from authhooks.users.store import MAX_EMAIL_LENGTH
from authhooks.users.throttle import TooManyAttempts

router = APIRouter(
    prefix="/dashboard",
    tags=["dashboard"],
    route_class=UnauthenticatedJSONRoute,
    include_in_schema=False,
)

COOKIE = "authhooks_dashboard"
# A management token minted for the dashboard lives at most this long.
TOKEN_LIFETIME = 600


class WrongOrigin(ApiError):
    """A sign-in sent from a page of another origin."""

    status = 403
    code = "invalid_origin"


class WrongCredentials(ApiError):
    """An admin client's id and secret, or an admin user's email and password, that
    do not match: one answer for an unknown one and a wrong one."""

    status = 401
    code = "invalid_credentials"


class CsrfMismatch(ApiError):
    status = 403
    code = "invalid_csrf_token"

    def __init__(self) -> None:
        super().__init__("missing or wrong X-CSRF-Token")


class SessionEnded(Unauthorized):
    """The session expired, was ended, or its admin or client is gone."""

    def __init__(self) -> None:
        super().__init__("the session ended: sign in again")


class SignIn(Body):
    """Either an admin client's id and secret, or an admin user's email and password."""

    client_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    client_secret: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    email: Annotated[str, Field(min_length=1, max_length=MAX_EMAIL_LENGTH)] | None = None
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SignIn:
        as_client = self.client_id is not None or self.client_secret is not None
        as_user = self.email is not None or self.password is not None
        if as_client == as_user:
            raise ValueError("send either client_id and client_secret, or email and password")
        if as_client and (self.client_id is None or self.client_secret is None):
            raise ValueError("send both client_id and client_secret")
        if as_user and (self.email is None or self.password is None):
            raise ValueError("send both email and password")
        return self


def _limits(found: Services) -> SessionLimits:
    return SessionLimits(
        found.settings.dashboard_session_idle, found.settings.dashboard_session_max
    )


@router.post("/session")
async def sign_in(
    body: SignIn,
    request: Request,
    response: Response,
    found: Annotated[Services, Depends(services)],
    origin: Annotated[str | None, Header(max_length=300)] = None,
) -> dict[str, Any]:
    """Start a session for an admin; its answer holds the CSRF token."""
    if origin is not None and _origin(origin) != _origin(found.settings.issuer):
        raise WrongOrigin("sign in from the dashboard's own pages")
    limits = _limits(found)
    if body.email is not None and body.password is not None:
        ip = request.client.host if request.client else None
        token, signed_in = await _admin_signs_in(found, body.email, body.password, ip, limits)
    else:
        assert body.client_id is not None
        assert body.client_secret is not None
        client = await _client_signs_in(found, body.client_id, body.client_secret)

        def start() -> tuple[str, SignedIn]:
            with found.database.session() as session:
                sessions.prune(session, limits)
                return sessions.start(session, limits, client_id=client.client_id)

        token, signed_in = await run_sync(start)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        COOKIE,
        token,
        max_age=limits.lifetime,
        path="/dashboard",
        secure=found.settings.issuer.startswith("https://"),
        httponly=True,
        samesite="strict",
    )
    return await _view(found, signed_in)


async def _client_signs_in(found: Services, client_id: str, secret: str) -> KnownClient:
    try:
        client = await authenticate(
            found.directory,
            found.hasher,
            None,
            {"client_id": client_id, "client_secret": secret},
        )
    except InvalidClientError:
        raise WrongCredentials("wrong client id or secret") from None
    _may_use_the_api(client)
    await _client_scopes(found, client.client_id)
    return client


async def _admin_signs_in(
    found: Services, email: str, password: str, ip: str | None, limits: SessionLimits
) -> tuple[str, SignedIn]:
    def start(session: Session, admin: AdminView) -> tuple[str, SignedIn]:
        # In the transaction that confirms the password, so a password changed
        # meanwhile leaves no session behind.
        if not admin.scopes:
            raise AccessDenied("this admin may not use the management API")
        sessions.prune(session, limits)
        return sessions.start(session, limits, admin_id=admin.id)

    try:
        return await found.admins.sign_in(email, password, ip, start)
    except WrongAdminCredentials:
        raise WrongCredentials("wrong email or password") from None
    except TooManyAttempts as error:
        raise RateLimited(str(error), error.retry_after) from None


@router.get("/session")
async def current(
    response: Response,
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
) -> dict[str, Any]:
    """The signed-in admin (after a page reload, say), or 401."""
    signed_in = await _resume(found, token)
    response.headers["Cache-Control"] = "no-store"
    return await _view(found, signed_in)


@router.post("/session/token")
async def management_token(
    response: Response,
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token", max_length=100)] = None,
) -> dict[str, Any]:
    """A short-lived management token of the signed-in admin, for the pages' API calls."""
    signed_in = await _resume(found, token)
    if not sessions.csrf_matches(signed_in, csrf):
        raise CsrfMismatch()
    left = int(signed_in.expires_at.timestamp() - time.time())
    lifetime = max(1, min(TOKEN_LIFETIME, left))
    audience = found.settings.management_audience
    if signed_in.admin_id is not None:
        admin = await _signed_in_admin(found, signed_in.admin_id)
        issued = await found.token_issuer.issue(
            subject=admin.subject,
            client_id=DASHBOARD_CLIENT_ID,
            audience=audience,
            scopes=tuple(sorted(admin.scopes)),
            grant_type_claim="password",
            lifetime=lifetime,
        )
    else:
        assert signed_in.client_id is not None
        client = await found.directory.client(signed_in.client_id)
        if client is None:
            raise SessionEnded()
        _may_use_the_api(client)
        scopes = await _client_scopes(found, client.client_id)
        issued = await found.token_issuer.issue(
            subject=f"{client.client_id}@clients",
            client_id=client.client_id,
            audience=audience,
            scopes=tuple(sorted(scopes)),
            grant_type_claim="client-credentials",
            lifetime=lifetime,
        )
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return issued.body()


@router.delete("/session", status_code=204)
async def sign_out(
    found: Annotated[Services, Depends(services)],
    token: Annotated[str | None, Cookie(alias=COOKIE, max_length=100)] = None,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token", max_length=100)] = None,
) -> Response:
    signed_in = await _resume(found, token)
    if not sessions.csrf_matches(signed_in, csrf):
        raise CsrfMismatch()
    assert token is not None

    def end() -> None:
        with found.database.session() as session:
            sessions.end(session, token)

    await run_sync(end)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


async def _resume(found: Services, token: str | None) -> SignedIn:
    if token is None:
        raise Unauthorized("not signed in")
    limits = _limits(found)

    def resume() -> SignedIn | None:
        with found.database.session() as session:
            return sessions.resume(session, token, limits)

    signed_in = await run_sync(resume)
    if signed_in is None:
        raise SessionEnded()
    return signed_in


async def _view(found: Services, signed_in: SignedIn) -> dict[str, Any]:
    """Who is signed in and what it may do now: scopes may be empty (a revoked grant),
    so that the page can still show why and sign out."""
    admin = None
    if signed_in.admin_id is not None:
        found_admin = await found.admins.find(signed_in.admin_id)
        if found_admin is None:
            raise SessionEnded()
        admin, scopes = {"id": found_admin.id, "email": found_admin.email}, found_admin.scopes
    else:
        assert signed_in.client_id is not None
        entitlement = await found.directory.entitlement(
            signed_in.client_id, found.settings.management_audience
        )
        scopes = frozenset(entitlement.scopes) if entitlement else frozenset()
    return {
        "client_id": signed_in.client_id,
        "admin": admin,
        "csrf_token": signed_in.csrf_token,
        "expires_at": signed_in.expires_at.isoformat().replace("+00:00", "Z"),
        "scopes": sorted(scopes),
    }


async def _signed_in_admin(found: Services, admin_id: str) -> AdminView:
    admin = await found.admins.find(admin_id)
    if admin is None:
        raise SessionEnded()
    if not admin.scopes:
        raise AccessDenied("this admin may no longer use the management API")
    return admin


async def _client_scopes(found: Services, client_id: str) -> frozenset[str]:
    entitlement = await found.directory.entitlement(client_id, found.settings.management_audience)
    if entitlement is None or not entitlement.scopes:
        raise AccessDenied("this client may not use the management API")
    return frozenset(entitlement.scopes)


def _may_use_the_api(client: KnownClient) -> None:
    """As at the token endpoint: only a confidential client allowed the client
    credentials grant gets management tokens."""
    if client.public or "client_credentials" not in client.grant_types:
        raise AccessDenied("this client may not get tokens with the client credentials grant")


def _origin(url: str) -> str:
    """An origin in one spelling: lower-case, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        return url  # not a URL: compares equal to nothing real
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")
