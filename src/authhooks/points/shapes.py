"""The pieces the built-in points' events are made of, as typed models.

The server builds events from these directly; the runner, replays and queued
deliveries parse them from JSON. Unknown keys are refused, so that a typo in a
hand-written test event is a 400 naming it rather than a hook that silently
sees nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from authhooks.points.contract import BadEvent

TENANT = "authhooks"  # the tenant name hooks see, as Auth0's would
CONNECTION_ID = "con_default"
CONNECTION_NAME = "Username-Password-Authentication"  # Auth0's name for the database connection

Model = TypeVar("Model", bound=BaseModel)


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Request(Shape):
    ip: str | None = None
    user_agent: str | None = None
    hostname: str | None = None
    language: str | None = None


class Connection(Shape):
    id: str = CONNECTION_ID
    name: str = CONNECTION_NAME


class Client(Shape):
    id: str
    name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    tenant: str = TENANT


class User(Shape):
    """A stored user, as the user points receive it."""

    id: str
    email: str
    email_verified: bool = False
    username: str | None = None
    phone_number: str | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    # The profile (Auth0's root attributes): name and nickname are never empty.
    name: str | None = None
    nickname: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = None
    created_at: str | None = None
    last_password_reset: str | None = None
    tenant: str = TENANT


class NewUser(Shape):
    """A user not stored yet (pre-user-registration)."""

    email: str
    username: str | None = None
    phone_number: str | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = TENANT


# What a sign-in is made of (post-login), in Auth0's names; a browser sign-in is
# oidc-basic-profile, a refresh oauth2-refresh-token.
SignInProtocol = Literal["oidc-basic-profile", "oauth2-refresh-token"]


class AuthenticationMethod(Shape):
    """A way the person proved who they are during the session (Auth0's names:
    ``pwd`` for a password), and when."""

    name: str
    timestamp: str  # ISO 8601

    @field_validator("timestamp")
    @classmethod
    def _iso_8601(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time") from None
        return value


class Authentication(Shape):
    methods: list[AuthenticationMethod] = Field(default_factory=list)


class Transaction(Shape):
    """The authorization request being answered (Auth0's ``event.transaction``)."""

    requested_scopes: list[str] = Field(default_factory=list)  # every scope asked for
    prompt: list[str] = Field(default_factory=list)
    redirect_uri: str | None = None
    response_type: list[str] = Field(default_factory=lambda: ["code"])
    # oidc-basic-profile: a browser sign-in; oauth2-refresh-token: a refresh.
    protocol: SignInProtocol = "oidc-basic-profile"
    ui_locales: list[str] = Field(default_factory=list)
    login_hint: str | None = None


class Stats(Shape):
    logins_count: int = Field(default=1, ge=0)  # this sign-in included


class Session(Shape):
    id: str


class Delivery(Shape):
    id: str
    attempt: int = Field(ge=1)


# What the runner's sample events share.
SAMPLE_REQUEST = {
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
    "hostname": "id.example.com",
    "language": "en",
}
SAMPLE_CONNECTION = {"id": CONNECTION_ID, "name": CONNECTION_NAME}


def parser(model: type[Model]) -> Callable[[Any], Model]:
    """Parse JSON into ``model``; BadEvent naming the first bad field."""

    def parse(value: Any) -> Model:
        try:
            return model.model_validate(value)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the event"
            raise BadEvent(f"event.{where}: {first['msg']}") from None

    return parse


def dump(event: BaseModel) -> dict[str, Any]:
    return event.model_dump()


def request_context(request: Request, secrets: dict[str, str]) -> dict[str, Any]:
    """The ``context`` every Hooks-convention function gets: plain data, no handles
    into the server."""
    return {"secrets": secrets, "request": request.model_dump(), "server": "authhooks"}


def actions_request(request: Request) -> dict[str, Any]:
    """``event.request`` of the Actions convention (Auth0 names ``hostname``, ``ip``,
    ``language``, ``user_agent``)."""
    return request.model_dump()
