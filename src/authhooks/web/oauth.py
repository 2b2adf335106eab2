"""The OAuth 2.0 endpoints: the token endpoint, revocation, userinfo, JWKS and
discovery.

These are plain Starlette routes, served ahead of FastAPI (app.FastPath): the
token endpoint sits inside every client's request path. Each handler turns
every failure into a JSON answer itself, since no middleware stands behind it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from authhooks.http import BodyTooLarge, read_bounded
from authhooks.identity.authorization import OIDC_SCOPES, PROMPTS
from authhooks.identity.oauth2.client_auth import AUTH_METHODS
from authhooks.identity.oauth2.errors import (
    InvalidRequestError,
    OAuth2Error,
    ServerError,
    TemporarilyUnavailableError,
)
from authhooks.identity.oauth2.request import MAX_BODY_BYTES
from authhooks.services import Services
from authhooks.web.cors import allow_registered_origins
from authhooks.web.request_info import request_info
from authhooks.web.userinfo import userinfo

log = logging.getLogger(__name__)

# RFC 6749 §5.1: token responses must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(
    body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


async def token(request: Request) -> Response:
    """POST /oauth/token (RFC 6749 §3.2)."""
    services: Services = request.app.state.services
    try:
        body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
        response = await services.token_endpoint.respond(
            request.headers.get("content-type"),
            request.headers.get("authorization"),
            body,
            request_info(request),
        )
    except BodyTooLarge as too_large:
        error: OAuth2Error = InvalidRequestError(str(too_large))
        return _json(error.body(), error.status_code, _NO_STORE)
    except OAuth2Error as error:
        return _json(error.body(), error.status_code, {**_NO_STORE, **error.headers()})
    except DBAPIError as error:
        log.error("token endpoint: database unavailable (%s)", type(error.orig).__name__)
        unavailable = TemporarilyUnavailableError("the database is unavailable; try again shortly")
        return _json(unavailable.body(), unavailable.status_code, {**_NO_STORE, "Retry-After": "1"})
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        log.exception("token endpoint: unexpected error")
        failure = ServerError("internal error: the server log has details")
        return _json(failure.body(), failure.status_code, _NO_STORE)
    return _json(response.body(), 200, _NO_STORE)


async def revoke(request: Request) -> Response:
    """POST /oauth/revoke (RFC 7009): 200 with an empty body, whatever the token."""
    services: Services = request.app.state.services
    try:
        body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
        await services.revocation.revoke(
            request.headers.get("content-type"), request.headers.get("authorization"), body
        )
    except BodyTooLarge as too_large:
        error: OAuth2Error = InvalidRequestError(str(too_large))
        return _json(error.body(), error.status_code, _NO_STORE)
    except OAuth2Error as error:
        return _json(error.body(), error.status_code, {**_NO_STORE, **error.headers()})
    except DBAPIError as error:
        log.error("revocation: database unavailable (%s)", type(error.orig).__name__)
        unavailable = TemporarilyUnavailableError("the database is unavailable; try again shortly")
        return _json(unavailable.body(), unavailable.status_code, {**_NO_STORE, "Retry-After": "1"})
    except ClientDisconnect:
        return Response(status_code=400)
    return Response(status_code=200, headers=_NO_STORE)


async def jwks(request: Request) -> Response:
    """GET /.well-known/jwks.json (RFC 7517): every key whose tokens may still be valid."""
    services: Services = request.app.state.services
    try:
        keys = await services.directory.keys()
    except DBAPIError as error:
        log.error("jwks: database unavailable (%s)", type(error.orig).__name__)
        return _json(
            {"error": "the database is unavailable; try again shortly"}, 503, {"Retry-After": "1"}
        )
    except Exception:
        log.exception("jwks: unexpected error")
        return _json({"error": "internal error: the server log has details"}, 500)
    # Verifiers refetch on an unknown kid, so a new key is found at once; the
    # max-age only bounds how long a withdrawn key lingers in their caches.
    # Public documents: any page may read them (single-page apps fetch them).
    return _json(
        keys.jwks,
        headers={"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"},
    )


def metadata(services: Services) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414), also served as OpenID discovery."""
    issuer = services.settings.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}authorize",
        "token_endpoint": f"{issuer}oauth/token",
        "userinfo_endpoint": f"{issuer}userinfo",
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}oauth/revoke",
        "end_session_endpoint": f"{issuer}oidc/logout",
        "grant_types_supported": services.token_endpoint.grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(OIDC_SCOPES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "name",
            "nickname",
            "given_name",
            "family_name",
            "picture",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
        ],
        "prompt_values_supported": sorted(PROMPTS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [services.settings.signing_algorithm],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


async def discovery(request: Request) -> Response:
    """GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server."""
    return _json(
        metadata(request.app.state.services),
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


def routes() -> list[Route]:
    return [
        Route(
            "/oauth/token",
            allow_registered_origins(token, "POST"),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            "/oauth/revoke",
            allow_registered_origins(revoke, "POST"),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            "/userinfo",
            allow_registered_origins(userinfo, "GET, POST"),
            methods=["GET", "POST", "OPTIONS"],
        ),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
    ]
