"""The shape of each point's event, checked before the runner sends one to a hook
(production events are built by the server and need no check).

Unknown keys are refused, so that a typo in a hand-written test event is a
400 naming it rather than a hook that silently sees nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Request(_Shape):
    ip: str | None = None
    user_agent: str | None = None
    hostname: str | None = None
    language: str | None = None


class Connection(_Shape):
    id: str
    name: str


class Client(_Shape):
    id: str
    name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    tenant: str = "authhooks"


class User(_Shape):
    """A stored user, as the user points receive it."""

    id: str
    email: str
    email_verified: bool = False
    username: str | None = None
    phone_number: str | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None
    last_password_reset: str | None = None
    tenant: str = "authhooks"


class NewUser(_Shape):
    """A user not stored yet (pre-user-registration)."""

    email: str
    username: str | None = None
    phone_number: str | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = "authhooks"


class Delivery(_Shape):
    id: str
    attempt: int = Field(ge=1)


class CredentialsExchangeEvent(_Shape):
    client: Client
    scope: list[str]
    audience: str
    api_scopes: list[str] | None = None  # the API's scopes: what a hook may add
    request: Request = Field(default_factory=Request)


class PasswordExchangeEvent(CredentialsExchangeEvent):
    user: User
    connection: Connection | None = None


class PreUserRegistrationEvent(_Shape):
    user: NewUser
    connection: Connection | None = None
    request: Request = Field(default_factory=Request)


class UserNotificationEvent(_Shape):
    user: User
    connection: Connection | None = None
    request: Request = Field(default_factory=Request)
    event_id: str | None = None
    delivery: Delivery | None = None
