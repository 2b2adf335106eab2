"""/api/v2/clients: applications that authenticate at the token endpoint."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Response
from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from authhooks.api import auth0_fields as auth0
from authhooks.api.auth import Caller, ensure_holds, require, services
from authhooks.api.errors import InvalidQuery
from authhooks.api.fields import FieldSelection, field_selection
from authhooks.api.models import Auth0Body, Body, Name, Out, Patch
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput
from authhooks.identity import clients
from authhooks.identity.oauth2.grants import GRANT_TYPES
from authhooks.services import Services

router = APIRouter(prefix="/clients", tags=["clients"], route_class=StrictJSONRoute)

AppType = Literal["non_interactive", "regular_web", "native", "spa"]
Description = Annotated[str, Field(max_length=140)]
Metadata = Annotated[dict[str, Annotated[str, Field(max_length=255)]], Field(max_length=10)]


def _check_grant_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    unknown = [grant for grant in value if grant not in GRANT_TYPES]
    if unknown:
        raise ValueError(
            f"unsupported grant type {', '.join(unknown)}; supported: {', '.join(GRANT_TYPES)}"
        )
    return list(dict.fromkeys(value))


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _check_redirect_uris(value: list[str] | None) -> list[str] | None:
    """Absolute URIs without a fragment (RFC 6749 §3.1.2), matched exactly: no wildcards."""
    if value is None:
        return value
    for uri in value:
        parts = urlsplit(uri)
        if not parts.scheme or not (parts.netloc or parts.path):
            raise ValueError(f"{uri!r} is not an absolute URI")
        if parts.fragment or uri.endswith("#"):
            raise ValueError(f"{uri!r} has a fragment, which a redirect URI may not have")
        if "*" in uri:
            raise ValueError(f"{uri!r}: URIs are matched exactly, so wildcards are not allowed")
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise ValueError(f"{uri!r} has no host")
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            # OAuth 2.1 §2.3.1: a code sent in clear could be read on its way.
            raise ValueError(f"{uri!r}: use https (http only for localhost and loopback addresses)")
    return list(dict.fromkeys(value))


def _check_origins(value: list[str] | None) -> list[str] | None:
    """Origins: scheme, host and port, nothing else (RFC 6454)."""
    if value is None:
        return value
    for origin in value:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{origin!r} is not an origin (https://host[:port])")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in origin:
            raise ValueError(f"{origin!r} is not an origin: no path, query or wildcard")
    return [origin.rstrip("/") for origin in dict.fromkeys(value)]


URIs = Annotated[list[Annotated[str, Field(min_length=1, max_length=2048)]], Field(max_length=100)]
AuthMethod = Literal["none", "client_secret_post", "client_secret_basic"]


class RefreshTokenIn(Body):
    """Auth0's refresh_token settings; what is left out keeps its value."""

    rotation_type: Literal["rotating", "non-rotating"] | None = None
    expiration_type: Literal["expiring", "non-expiring"] | None = None
    leeway: Annotated[int, Field(ge=0, le=60)] | None = None
    token_lifetime: Annotated[int, Field(ge=60, le=10 * 365 * 24 * 3600)] | None = None
    idle_token_lifetime: Annotated[int, Field(ge=60, le=10 * 365 * 24 * 3600)] | None = None
    infinite_token_lifetime: bool | None = None
    infinite_idle_token_lifetime: bool | None = None


class RefreshTokenOut(Out):
    rotation_type: str
    expiration_type: str
    leeway: int
    token_lifetime: int
    idle_token_lifetime: int
    infinite_token_lifetime: bool
    infinite_idle_token_lifetime: bool


class BrowserSettings(Auth0Body):
    """What a client people sign in to by browser registers (Auth0's fields), and
    Auth0's fields of no effect."""

    auth0_fields = auth0.CLIENT_NO_EFFECT
    read_only = auth0.CLIENT_READ_ONLY
    refused = auth0.CLIENT_REFUSED

    callbacks: URIs | None = None
    allowed_logout_urls: URIs | None = None
    web_origins: URIs | None = None
    allowed_origins: URIs | None = None
    # Default: none for spa and native apps (public clients), client_secret_post otherwise.
    token_endpoint_auth_method: AuthMethod | None = None
    is_first_party: bool | None = None
    refresh_token: RefreshTokenIn | None = None

    _redirects = field_validator("callbacks", "allowed_logout_urls")(_check_redirect_uris)
    _origins = field_validator("web_origins", "allowed_origins")(_check_origins)

    def settings(self) -> dict[str, Any]:
        chosen = self.model_dump(
            include=set(BrowserSettings.model_fields), exclude_unset=True, exclude_none=True
        )
        if self.refresh_token is not None:
            chosen["refresh_token"] = self.refresh_token.model_dump(exclude_none=True)
        return chosen


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and any(not key or len(key) > 255 for key in value):
        raise ValueError("metadata keys must be 1 to 255 characters")
    return value


class ClientCreate(BrowserSettings):
    name: Name
    description: Description = ""
    app_type: AppType = "non_interactive"
    # Default: ["client_credentials"] for confidential app types, [] for spa and native.
    grant_types: list[str] | None = None
    client_metadata: Metadata = Field(default_factory=dict)
    # Default: true for apps people sign in to, false for non_interactive (machine) clients.
    signup_enabled: bool | None = None

    _grants = field_validator("grant_types")(_check_grant_types)
    _metadata = field_validator("client_metadata")(_check_metadata)

    @model_validator(mode="after")
    def _nothing_read_only(self) -> Self:
        self.refuse_read_only()
        return self


class ClientUpdate(Patch, BrowserSettings):
    name: Name | None = None
    description: Description | None = None
    app_type: AppType | None = None
    grant_types: list[str] | None = None
    client_metadata: Metadata | None = None
    signup_enabled: bool | None = None

    _grants = field_validator("grant_types")(_check_grant_types)
    _metadata = field_validator("client_metadata")(_check_metadata)


class ClientOut(Out):
    client_id: str
    name: str
    description: str
    app_type: str
    grant_types: list[str]
    client_metadata: dict[str, str]
    signup_enabled: bool
    callbacks: list[str]
    allowed_logout_urls: list[str]
    web_origins: list[str]
    allowed_origins: list[str]
    token_endpoint_auth_method: str
    is_first_party: bool
    refresh_token: RefreshTokenOut
    created_at: datetime
    updated_at: datetime
    auth0_settings: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_serializer(mode="wrap")
    def _with_auth0_settings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Auth0's fields of no effect, answered back as they were sent.
        return {**self.auth0_settings, **handler(self)}

    @field_validator("refresh_token", mode="before")
    @classmethod
    def _with_defaults(cls, stored: Any) -> Any:
        # Clients stored before these settings existed hold {}: the defaults apply.
        if isinstance(stored, dict):
            return asdict(clients.RefreshTokenSettings.of(stored))
        return stored


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="Shown only in this response; store it now.")


def _with_secret(client: Any, secret: str) -> ClientWithSecret:
    # Every field as read, Auth0's of no effect included, and the secret this once.
    return ClientWithSecret(**vars(ClientOut.model_validate(client)), client_secret=secret)


@router.post("", status_code=201, response_model=ClientWithSecret)
def create_client(
    body: ClientCreate,
    _: Annotated[Caller, Depends(require("create:clients"))],
    found: Annotated[Services, Depends(services)],
) -> ClientWithSecret:
    with found.database.session() as session:
        client, secret = clients.create_client(
            session,
            found.hasher,
            name=body.name,
            description=body.description,
            app_type=body.app_type,
            grant_types=body.grant_types,
            client_metadata=body.client_metadata,
            signup_enabled=body.signup_enabled,
            settings=body.settings(),
        )
        client.auth0_settings = dict(body.no_effect)
        session.flush()
        out = _with_secret(client, secret)
    found.directory.invalidate()
    return out


@router.get("", response_model=list[ClientOut] | dict[str, Any])
def list_clients(
    _: Annotated[Caller, Depends(require("read:clients"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
    app_type: Annotated[
        str | None,
        Query(max_length=512, description="comma-separated app types: the clients of any of them"),
    ] = None,
    is_first_party: bool | None = None,
    q: Annotated[
        str | None,
        Query(max_length=1000, description="Auth0's client search: by client_grant fields"),
    ] = None,
) -> Any:
    if q is not None:
        _check_client_search(q)
        # Auth0's q finds the clients granted for organizations; none is, here.
        return selection.shaped(page.shape("clients", [], 0), "clients")
    # Auth0's filters: an SDK's clients.list({app_type}) must not answer every
    # client. A type authhooks has no client of (sso_integration, ...) matches none.
    # is_global is not one: every Auth0 tenant has a global client, and Auth0's
    # Deploy CLI fails without one (it reads the login page from it); none is here.
    app_types = None if app_type is None else [each.strip() for each in app_type.split(",")]
    with found.database.session() as session:
        rows, total = clients.list_clients(
            session,
            offset=page.offset,
            limit=page.per_page,
            app_types=app_types,
            is_first_party=is_first_party,
        )
        items = [ClientOut.model_validate(row) for row in rows]
    return selection.shaped(page.shape("clients", items, total), "clients")


_ORGANIZATION_GRANT = re.compile(
    r'client_grant\.(organization_id:"?[A-Za-z0-9_\-]+"?|allow_any_organization:"?true"?)'
)


def _check_client_search(q: str) -> None:
    """``q`` must be a search Auth0's clients list takes (a client's grants for
    organizations); any other is a 400 that says so."""
    if not _ORGANIZATION_GRANT.fullmatch(q.strip()):
        raise InvalidQuery(
            "q takes client_grant.organization_id:<id> or client_grant.allow_any_organization:"
            "true (authhooks has no organizations, so either finds no client)"
        )


@router.get("/{client_id}", response_model=ClientOut)
def get_client(
    client_id: str,
    _: Annotated[Caller, Depends(require("read:clients"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
) -> Any:
    with found.database.session() as session:
        return selection.shaped(ClientOut.model_validate(clients.get_client(session, client_id)))


@router.patch("/{client_id}", response_model=ClientOut)
def update_client(
    client_id: str,
    body: ClientUpdate,
    _: Annotated[Caller, Depends(require("update:clients"))],
    found: Annotated[Services, Depends(services)],
) -> ClientOut:
    changes = body.model_dump(exclude_unset=True, exclude=set(BrowserSettings.model_fields))
    changes.update(body.settings())
    with found.database.session() as session:
        current = clients.get_client(session, client_id)
        changed = body.changed_read_only(ClientOut.model_validate(current).model_dump(mode="json"))
        if changed:
            raise InvalidInput(f"{', '.join(changed)}: read-only, and not as stored")
        if body.no_effect:
            changes["auth0_settings"] = {**current.auth0_settings, **body.no_effect}
        out = ClientOut.model_validate(clients.update_client(session, client_id, changes))
    found.directory.invalidate()
    return out


@router.delete("/{client_id}", status_code=204)
def delete_client(
    client_id: str,
    _: Annotated[Caller, Depends(require("delete:clients"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    with found.database.session() as session:
        clients.delete_client(session, client_id)
    found.directory.invalidate()
    return Response(status_code=204)


@router.post("/{client_id}/rotate-secret", response_model=ClientWithSecret)
def rotate_secret(
    client_id: str,
    caller: Annotated[Caller, Depends(require("update:client_keys"))],
    found: Annotated[Services, Depends(services)],
) -> ClientWithSecret:
    with found.database.session() as session:
        # A new secret is the client's power: only a caller who holds that power may take it.
        held = clients.granted_scopes(session, client_id, found.settings.management_audience)
        ensure_holds(caller, held, "rotate this client's secret")
        client, secret = clients.rotate_client_secret(session, found.hasher, client_id)
        out = _with_secret(client, secret)
    found.directory.invalidate()
    return out
