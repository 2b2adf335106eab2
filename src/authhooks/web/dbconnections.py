"""The database connection's public endpoints, in Auth0's shapes:
``POST /dbconnections/signup`` and ``POST /dbconnections/change_password``.

Errors follow Auth0's authentication API: ``{"name", "code", "description",
"statusCode"}``, one class per code below, and ``_answer_for`` the one place
that turns a domain failure into one of them. Password policy errors are
``PasswordStrengthError`` with the list of rules and which of them failed.
Each also carries its code and text as ``error`` and ``error_description``,
the shape /oauth/token answers in (RFC 6749 §5.2): that is where Auth0's SDKs
look for an error's text, and auth0-python finds none in ``description``, so
without them a refusal reached its callers as a bare "400: ".

change_password mails a reset link, as Auth0's does, and answers the same
whether or not the address is a user's.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl

from anyio.to_thread import run_sync
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from authhooks.errors import Conflict, InvalidInput
from authhooks.http import (
    BodyRefused,
    check_json_body,
    describe_validation_errors,
    read_bounded,
)
from authhooks.identity.directory import KnownClient
from authhooks.identity.mail.sender import MailOff
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.services import Services
from authhooks.users import profile, store
from authhooks.users.policy import MAX_PASSWORD_LENGTH, WeakPassword
from authhooks.users.registration import NewUser, SignupRefused
from authhooks.users.throttle import TooManyAttempts, TooManyResets, TooManySignups
from authhooks.web.request_info import request_info

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Auth0's limits on metadata sent at signup: a few short strings.
SIGNUP_METADATA_KEYS = 10
SIGNUP_METADATA_VALUE_CHARS = 500


class DbConnectionError(Exception):
    """An answer of Auth0's authentication API: ``{"name", "code", "description",
    "statusCode", "error", "error_description"}``; ``str(error)`` is the description."""

    status: int = 400  # a class's own, but InvalidBody keeps the refusal's
    code: ClassVar[str]
    # Auth0 names its errors by kind, and most of these /dbconnections answers
    # BadRequestError whatever their status.
    name: ClassVar[str] = "BadRequestError"

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "code": self.code,
            "description": str(self),
            "statusCode": self.status,
            "error": self.code,
            "error_description": str(self),
        }

    def headers(self) -> dict[str, str]:
        return {}


class InvalidBody(DbConnectionError):
    """The body is not taken as sent: too large, not JSON, or failing validation."""

    code = "invalid_body"

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        # A refused body keeps its status (413, 415) under the one code Auth0 uses here.
        self.status = status


class InvalidClient(DbConnectionError):
    code = "invalid_client"


class SignupDisabled(DbConnectionError):
    status = 403
    code = "operation_not_supported"

    def __init__(self) -> None:
        super().__init__("public signup is disabled")


class PasswordStrengthError(DbConnectionError):
    """The password breaks the policy: the description lists every rule, and which
    of them failed."""

    code = "invalid_password"
    name = "PasswordStrengthError"

    def __init__(self, weak: WeakPassword) -> None:
        super().__init__(str(weak))
        self.rules = weak.rules

    def body(self) -> dict[str, Any]:
        rules = [
            {"code": rule.code, "message": rule.message, "verified": rule.verified}
            for rule in self.rules
        ]
        return {
            "name": self.name,
            "message": str(self),
            "code": self.code,
            "description": {"rules": rules, "verified": False},
            "statusCode": self.status,
            "error": self.code,
            "error_description": str(self),
        }


class UserExists(DbConnectionError):
    status = 409
    code = "user_exists"

    def __init__(self) -> None:
        super().__init__("The user already exists.")


class InvalidSignup(DbConnectionError):
    code = "invalid_signup"


class ExtensibilityError(DbConnectionError):
    """A pre-user-registration hook refused the signup, or failed."""

    code = "extensibility_error"


class RateLimited(DbConnectionError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MailNotConfigured(DbConnectionError):
    """change_password needs mail, and this server has no SMTP server configured."""

    status = 400
    code = "mail_not_configured"
    name = "BadRequestError"

    def __init__(self) -> None:
        super().__init__(
            "password reset by mail is not available: this server's operator has not "
            "configured an SMTP server; ask an administrator to set your password"
        )


class TemporarilyUnavailable(DbConnectionError):
    status = 503
    code = "temporarily_unavailable"

    def __init__(self) -> None:
        super().__init__("the database is unavailable; try again")


class ServerError(DbConnectionError):
    status = 500
    code = "server_error"

    def __init__(self) -> None:
        super().__init__("internal error: the server log has details")


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
    # The person's profile, as Auth0's signup takes it (users/profile.py checks it).
    name: str | None = None
    nickname: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = None

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


# Auth0's answer to every change_password request that names an address, whether
# or not a user has that address: this sentence as plain text, not JSON (Auth0's
# SDKs read it as text: node-auth0's changePassword would answer it with quotes).
RESET_MAIL_SENT = "We've just sent you an email to reset your password."
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


async def signup(request: Request) -> Response:
    """POST /dbconnections/signup: Auth0's answer is the new user's id and email."""

    async def handle(services: Services, body: bytes, info: RequestInfo) -> Response:
        form = _parse(SignupForm, body)
        client = await _client(services, form.client_id)
        if not (services.settings.signup_enabled and client.signup_enabled):
            raise SignupDisabled()
        await run_sync(services.signup_throttle.reserve, info.ip)
        new = NewUser(
            email=form.email,
            password=form.password,
            username=form.username,
            phone_number=form.phone_number,
            user_metadata=dict(form.user_metadata),
            profile=profile.given(form),
        )
        user = await services.registration.register(new, info)
        answer: dict[str, Any] = {
            "_id": user.id.removeprefix(store.USER_ID_PREFIX),
            "email": user.email,
            "email_verified": user.email_verified,
        }
        if user.username:
            answer["username"] = user.username
        answer.update(profile.given(user))
        if user.user_metadata:
            answer["user_metadata"] = user.user_metadata
        return _json(answer)

    return await _serve(request, handle)


async def change_password(request: Request) -> Response:
    """POST /dbconnections/change_password (JSON or a form): mail a reset link to the
    user with this address, if there is one; the same answer either way."""

    async def handle(services: Services, body: bytes, info: RequestInfo) -> Response:
        form = _parse(ChangePasswordForm, body)
        await _client(services, form.client_id)
        try:
            await services.password_reset.request(form.email, info)
        except InvalidInput as error:  # not an address: the body is wrong, not a signup
            raise InvalidBody(str(error)) from None
        return Response(
            RESET_MAIL_SENT,
            headers={"Cache-Control": "no-store"},
            media_type="text/plain; charset=utf-8",
        )

    return await _serve(request, handle, forms=True)


async def _serve(request: Request, handle: Any, *, forms: bool = False) -> Response:
    services: Services = request.app.state.services
    try:
        body = await read_bounded(request.headers, request.stream(), MAX_BODY_BYTES)
        content_type = request.headers.get("content-type")
        if forms and _media_type(content_type) == FORM_CONTENT_TYPE:
            body = _form_as_json(body)
        else:
            check_json_body(content_type, body)
        return await handle(services, body, request_info(request))  # type: ignore[no-any-return]
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception as error:
        failure = _answer_for(error)
        return _json(failure.body(), failure.status, failure.headers())


def _answer_for(error: Exception) -> DbConnectionError:
    """The one place that turns a failure into this surface's answer."""
    match error:
        case DbConnectionError():
            return error
        case BodyRefused():
            return InvalidBody(str(error), error.status)
        case WeakPassword():
            return PasswordStrengthError(error)
        case Conflict():
            return UserExists()
        case InvalidInput():
            return InvalidSignup(str(error))
        case SignupRefused():
            return ExtensibilityError(str(error))
        case TooManyAttempts() | TooManySignups() | TooManyResets():
            return RateLimited(str(error), error.retry_after)
        case MailOff():
            return MailNotConfigured()
        case DBAPIError():
            log.error("dbconnections: database unavailable (%s)", type(error.orig).__name__)
            return TemporarilyUnavailable()
    log.exception("dbconnections: unexpected error")
    return ServerError()


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _form_as_json(body: bytes) -> bytes:
    """A form body as the JSON object it stands for, each field at most once (Auth0's
    clients send change_password as a form too)."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidBody("the body is not valid form encoding") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise InvalidBody(f"field {name!r} is repeated")
        if "\x00" in name or "\x00" in value:
            raise InvalidBody(f"field {name!r} holds a NUL character")
        fields[name] = value
    return json.dumps(fields).encode()


def _parse(model: type[_Form], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        message, _ = describe_validation_errors(error.errors(include_url=False))
        raise InvalidBody(message) from None


async def _client(services: Services, client_id: str) -> KnownClient:
    client = await services.directory.client(client_id)
    if client is None:
        raise InvalidClient(f"unknown client_id {client_id!r}")
    return client


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
