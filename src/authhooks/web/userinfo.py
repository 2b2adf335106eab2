"""``GET``/``POST /userinfo`` (OIDC Core §5.3): the signed-in person's claims, for an
access token that carries this server's userinfo audience. Errors follow RFC
6750 §3: a ``WWW-Authenticate: Bearer`` challenge naming what was wrong."""

from __future__ import annotations

import json
import logging

from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response

from authhooks.identity.id_tokens import user_claims
from authhooks.identity.tokens import InvalidAccessToken, verify_access_token
from authhooks.services import Services
from authhooks.storage import models

log = logging.getLogger(__name__)


def _challenge(error: str, description: str, status_code: int) -> Response:
    quoted = description.replace('"', "'")
    return Response(
        json.dumps({"error": error, "error_description": description}),
        status_code=status_code,
        media_type="application/json",
        headers={
            "WWW-Authenticate": f'Bearer realm="authhooks", error="{error}", '
            f'error_description="{quoted}"',
            "Cache-Control": "no-store",
        },
    )


async def userinfo(request: Request) -> Response:
    services: Services = request.app.state.services
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 §3.1: a request without a token gets a bare challenge.
        return Response(
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="authhooks"', "Cache-Control": "no-store"},
        )
    try:
        keys = await services.directory.keys()
        claims = verify_access_token(
            token.strip(),
            keys,
            services.settings.issuer,
            services.user_tokens.userinfo_audience,
        )

        def load() -> models.User | None:
            with services.database.session() as session:
                return session.get(models.User, str(claims["sub"]))

        user = await run_sync(load)
    except InvalidAccessToken as error:
        return _challenge("invalid_token", str(error), 401)
    except DBAPIError as failure:
        log.error("userinfo: database unavailable (%s)", type(failure.orig).__name__)
        return Response(status_code=503, headers={"Retry-After": "1"})
    if user is None or user.blocked:
        return _challenge("invalid_token", "the user no longer exists or is blocked", 401)
    scope = claims.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return Response(
        json.dumps(user_claims(user, scopes)),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
