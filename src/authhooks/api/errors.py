"""Management API errors, rendered in one place in Auth0's shape:
``{"statusCode": 404, "error": "Not Found", "message": "...", "errorCode": "..."}``.

Every failure is a class carrying its status and ``errorCode``: the domain's
(``authhooks.errors.DomainError`` and its subclasses, in the module that owns
the concept), the request body's (``authhooks.http.BodyRefused``), and the
ones below, which only this HTTP surface knows of: authentication (RFC 6750),
the form of a request outside its body, the server's own limits.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException

from authhooks.errors import DomainError
from authhooks.http import BodyRefused, describe_validation_errors

log = logging.getLogger(__name__)

# RFC 6750 §3: the challenge of every 401 from a bearer-token check.
_REALM = 'Bearer realm="authhooks"'


class ApiError(Exception):
    """``str(error)`` is the message; ``headers()`` what the answer adds."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"

    def headers(self) -> dict[str, str] | None:
        return None


class InvalidRequest(ApiError):
    """The request is malformed outside its body (its path, query or headers)."""


class InvalidQuery(ApiError):
    """A query parameter has the right type but an unacceptable value."""

    code = "invalid_query_string"


class Unauthorized(ApiError):
    """No credentials, or none this surface takes (a dashboard session that ended)."""

    status = 401
    code = "unauthorized"


class MissingToken(Unauthorized):
    """No bearer token was sent: RFC 6750 §3.1 answers with no error code."""

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": _REALM}


class InvalidToken(ApiError):
    """A bearer token that does not verify, or no longer grants anything."""

    status = 401
    code = "invalid_token"

    def __init__(self, why: str) -> None:
        super().__init__(f"Invalid token: {why}")

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'}


class AccessLost(InvalidToken):
    """A valid token whose key, client, grant or admin is gone: a request is refused,
    and a stream it opened ends with ``reason``."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason


class InsufficientScope(ApiError):
    """The caller's token lacks the scope a route requires."""

    status = 403
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"Insufficient scope, expected: {scope}")
        self.scope = scope

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


class ScopesNotHeld(ApiError):
    """The caller would hand out (or take over) management scopes its token lacks."""

    status = 403
    code = "insufficient_scope"

    def __init__(self, action: str, missing: list[str]) -> None:
        super().__init__(
            f"cannot {action}: it carries management scopes your token lacks ({' '.join(missing)})"
        )


class AccessDenied(ApiError):
    """The caller is who it says, but may not use the management API."""

    status = 403
    code = "access_denied"


class _RetryLater(ApiError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryLater):
    """Too many failed sign-ins; the answer says when to try again."""

    status = 429
    code = "too_many_attempts"


class Unavailable(_RetryLater):
    """This server process cannot take the request now (stopping, or at a limit)."""

    status = 503
    code = "unavailable"


def error_response(
    status_code: int,
    message: str,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "statusCode": status_code,
        "error": HTTPStatus(status_code).phrase,
        "message": message,
    }
    if error_code:
        body["errorCode"] = error_code
    body.update(details or {})  # what more a caller needs to mend its request
    return JSONResponse(body, status_code=status_code, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an Auth0-shaped JSON error."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.code, exc.headers())

    @app.exception_handler(BodyRefused)
    async def _body_refused(_: Request, exc: BodyRefused) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.code)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, code = describe_validation_errors(exc.errors())
        return error_response(400, message, code)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two concurrent requests raced past a uniqueness check; the database kept one.
        return error_response(409, "the change conflicts with an existing object", "conflict")

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        return error_response(400, "a value is not acceptable to the database", "invalid_body")

    @app.exception_handler(DBAPIError)
    async def _database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        log.error("database error: %s", type(exc.orig).__name__ if exc.orig else exc)
        return error_response(
            503,
            "the database is unavailable; try again shortly",
            "temporarily_unavailable",
            {"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception itself after this answer is sent.
        return error_response(500, "internal error: the server log has details")
