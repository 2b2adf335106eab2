"""The database connection's public endpoints, in Auth0's shapes:
``POST /dbconnections/signup`` and ``POST /dbconnections/change_password``.

Errors follow Auth0's authentication API: ``{"name", "code", "description",
"statusCode"}``. Password policy errors are ``PasswordStrengthError`` with the
list of rules and which of them failed. Auth0's change_password sends a reset
email; this server has no mail, so the user proves the current password.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from anyio.to_thread import run_sync
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from authhooks.api.errors import ApiError, describe_validation_errors
from authhooks.api.routing import check_json_body
from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.http import BodyTooLarge, read_bounded
from authhooks.identity.directory import KnownClient
from authhooks.identity.http import request_info
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.services import Services
from authhooks.users import store
from authhooks.users.login import UserBlocked, WrongCredentials
from authhooks.users.policy import MAX_PASSWORD_LENGTH, WeakPassword
from authhooks.users.registration import NewUser, SignupRefused
from authhooks.users.throttle import TooManyAttempts, TooManySignups

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Auth0's limits on metadata sent at signup: a few short strings.
SIGNUP_METADATA_KEYS = 10
SIGNUP_METADATA_VALUE_CHARS = 500


class DbConnectionError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        description: Any,
        name: str = "BadRequestError",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.body = {
            "name": name,
            "code": code,
            "description": description,
            "statusCode": status_code,
            **extra,
        }
        self.headers = headers


Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    connection: str | None = None

    @field_validator("connection")
    @classmethod
    def _our_connection(cls, value: str | None) -> str | None:
        if value is not None and value != store.CONNECTION["name"]:
            raise ValueError(f"the only connection is {store.CONNECTION['name']!r}")
        return value


class SignupForm(_Form):
    email: Annotated[str, Field(min_length=1, max_length=store.MAX_EMAIL_LENGTH)]
    password: Password
    username: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    phone_number: Annotated[str, Field(max_length=32)] | None = None
    user_metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("user_metadata")
    @classmethod
    def _short_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > SIGNUP_METADATA_KEYS:
            raise ValueError(f"at most {SIGNUP_METADATA_KEYS} properties at signup")
        for key, item in value.items():
            if not key or "." in key or key.startswith("$"):
                raise ValueError(f"key {key!r} may not be empty, contain '.' or start with '$'")
            if len(item) > SIGNUP_METADATA_VALUE_CHARS:
                raise ValueError(f"{key} is longer than {SIGNUP_METADATA_VALUE_CHARS} characters")
        return value


class ChangePasswordForm(_Form):
    email: Annotated[str, Field(min_length=1, max_length=store.MAX_EMAIL_LENGTH)]
    password: Password
    new_password: Password


async def signup(request: Request) -> Response:
    """POST /dbconnections/signup: Auth0's answer is the new user's id and email."""

    async def handle(services: Services, body: bytes, info: RequestInfo) -> Response:
        form = _parse(SignupForm, body)
        client = await _client(services, form.client_id)
        if not (services.settings.signup_enabled and client.signup_enabled):
            raise DbConnectionError(403, "operation_not_supported", "public signup is disabled")
        await run_sync(services.signup_throttle.reserve, info.ip)
        new = NewUser(
            email=form.email,
            password=form.password,
            username=form.username,
            phone_number=form.phone_number,
            user_metadata=dict(form.user_metadata),
        )
        user = await services.registration.register(new, info)
        answer: dict[str, Any] = {
            "_id": user.id.removeprefix(store.USER_ID_PREFIX),
            "email": user.email,
            "email_verified": user.email_verified,
        }
        if user.username:
            answer["username"] = user.username
        if user.user_metadata:
            answer["user_metadata"] = user.user_metadata
        return _json(answer)

    return await _serve(request, handle)


async def change_password(request: Request) -> Response:
    """POST /dbconnections/change_password: the current password proves the user."""

    async def handle(services: Services, body: bytes, info: RequestInfo) -> Response:
        form = _parse(ChangePasswordForm, body)
        await _client(services, form.client_id)
        await services.password_change.by_user(form.email, form.password, form.new_password, info)
        return _json({"message": "Password changed."})

    return await _serve(request, handle)


async def _serve(request: Request, handle: Any) -> Response:
    services: Services = request.app.state.services
    try:
        body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
        check_json_body(request.headers.get("content-type"), body)
        return await handle(services, body, request_info(request))  # type: ignore[no-any-return]
    except DbConnectionError as error:
        return _json(error.body, error.status_code, error.headers)
    except ApiError as error:
        return _error(error.status_code, "invalid_body", error.message)
    except BodyTooLarge as error:
        return _error(413, "invalid_body", str(error))
    except WeakPassword as error:
        rules = [
            {"code": rule.code, "message": rule.message, "verified": rule.verified}
            for rule in error.rules
        ]
        strength = {
            "name": "PasswordStrengthError",
            "message": str(error),
            "code": "invalid_password",
            "description": {"rules": rules, "verified": False},
            "statusCode": 400,
        }
        return _json(strength, 400)
    except Conflict:
        return _error(409, "user_exists", "The user already exists.")
    except InvalidInput as error:
        return _error(400, "invalid_signup", str(error))
    except SignupRefused as error:
        return _error(400, "extensibility_error", str(error))
    except WrongCredentials:
        return _error(403, "invalid_user_password", "Wrong email or password.")
    except UserBlocked:
        return _error(403, "unauthorized", "user is blocked")
    except (TooManyAttempts, TooManySignups) as error:
        return _error(429, "too_many_attempts", str(error), {"Retry-After": str(error.retry_after)})
    except NotFound:
        return _error(404, "user_not_found", "the user no longer exists")
    except DBAPIError as error:
        log.error("dbconnections: database unavailable (%s)", type(error.orig).__name__)
        return _error(503, "temporarily_unavailable", "the database is unavailable; try again")
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        log.exception("dbconnections: unexpected error")
        return _error(500, "server_error", "internal error: the server log has details")


def _parse(model: type[_Form], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        message, _ = describe_validation_errors(error.errors(include_url=False))
        raise DbConnectionError(400, "invalid_body", message) from None


async def _client(services: Services, client_id: str) -> KnownClient:
    client = await services.directory.client(client_id)
    if client is None:
        raise DbConnectionError(400, "invalid_client", f"unknown client_id {client_id!r}")
    return client


def _error(
    status_code: int, code: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    return _json(DbConnectionError(status_code, code, description).body, status_code, headers)


def _json(
    body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=str).encode(),
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
        media_type="application/json",
    )


def routes() -> list[Route]:
    return [
        Route("/dbconnections/signup", signup, methods=["POST"]),
        Route("/dbconnections/change_password", change_password, methods=["POST"]),
    ]
