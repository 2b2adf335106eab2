"""Management API errors, rendered in one place in Auth0's shape:
``{"statusCode": 404, "error": "Not Found", "message": "...", "errorCode": "..."}``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException

from authhooks.errors import DomainError
from authhooks.http import BodyTooLarge
from authhooks.users.policy import WeakPassword

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        message: str,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error_code = error_code
        self.headers = headers


def error_response(
    status_code: int,
    message: str,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "statusCode": status_code,
        "error": HTTPStatus(status_code).phrase,
        "message": message,
    }
    if error_code:
        body["errorCode"] = error_code
    return JSONResponse(body, status_code=status_code, headers=headers)


def describe_validation_errors(errors: Any) -> tuple[str, str]:
    """A one-line message naming each bad field, and Auth0's error code for where it was."""
    parts = []
    where = "body"
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where = loc[0]
            loc = loc[1:]
        field = ".".join(loc)
        message = error.get("msg", "is invalid")
        if error.get("type") == "json_invalid":
            message = f"invalid JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
            field = ""
        parts.append(f"{field}: {message}" if field else message)
    code = {"body": "invalid_body", "query": "invalid_query_string"}.get(where, "invalid_request")
    prefix = "Payload validation error" if where == "body" else "Request validation error"
    return f"{prefix}: {'; '.join(parts)}", code


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an Auth0-shaped JSON error."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.error_code, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, str(exc), "too_large")

    @app.exception_handler(WeakPassword)
    async def _weak_password(_: Request, exc: WeakPassword) -> JSONResponse:
        return error_response(400, str(exc), "invalid_password")

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
