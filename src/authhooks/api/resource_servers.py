"""/api/v2/resource-servers: the APIs tokens are issued for; ``identifier`` is the audience."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, Query, Response
from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from authhooks.api import auth0_fields as auth0
from authhooks.api.auth import Caller, require, services
from authhooks.api.models import Auth0Body, Body, Name, Out, Patch, ScopeValue
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput
from authhooks.identity import clients
from authhooks.services import Services

router = APIRouter(
    prefix="/resource-servers", tags=["resource-servers"], route_class=StrictJSONRoute
)


def _not_an_id(value: str) -> str:
    if re.fullmatch(r"[0-9a-f]{24}", value):
        raise ValueError("must not look like a resource server id (24 hex digits)")
    return value


# Lookups accept an id or an identifier, so an identifier may not look like an id.
Identifier = Annotated[
    str, Field(min_length=1, max_length=600, pattern=r"^\S+$"), AfterValidator(_not_an_id)
]
TokenLifetime = Annotated[int, Field(ge=60, le=30 * 86400)]


class Scope(Body):
    value: ScopeValue
    description: Annotated[str, Field(max_length=500)] = ""


def _unique_scopes(value: list[Scope] | None) -> list[Scope] | None:
    if value is not None:
        seen: set[str] = set()
        for scope in value:
            if scope.value in seen:
                raise ValueError(f"scope {scope.value!r} is listed twice")
            seen.add(scope.value)
    return value


Scopes = Annotated[list[Scope], Field(max_length=1000)]


class ResourceServerCreate(Auth0Body):
    auth0_fields = auth0.RESOURCE_SERVER_NO_EFFECT
    read_only = auth0.RESOURCE_SERVER_READ_ONLY
    refused = auth0.RESOURCE_SERVER_REFUSED

    name: Name
    identifier: Identifier
    scopes: Scopes = Field(default_factory=list)
    token_lifetime: TokenLifetime | None = None

    _unique = field_validator("scopes")(_unique_scopes)

    @model_validator(mode="after")
    def _nothing_read_only(self) -> Self:
        self.refuse_read_only()
        return self


class ResourceServerUpdate(Patch, Auth0Body):
    nullable = frozenset({"token_lifetime"})
    auth0_fields = auth0.RESOURCE_SERVER_NO_EFFECT
    # Its identifier is the audience of every token issued for it: never changed.
    read_only = auth0.RESOURCE_SERVER_READ_ONLY | {"identifier"}
    refused = auth0.RESOURCE_SERVER_REFUSED

    name: Name | None = None
    scopes: Scopes | None = None
    token_lifetime: TokenLifetime | None = None

    _unique = field_validator("scopes")(_unique_scopes)


class ResourceServerOut(Out):
    id: str
    name: str
    identifier: str
    scopes: list[Scope]
    token_lifetime: int | None
    is_system: bool
    created_at: datetime
    updated_at: datetime
    auth0_settings: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_serializer(mode="wrap")
    def _with_auth0_settings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Auth0's fields of no effect, answered back as they were sent.
        return {**self.auth0_settings, **handler(self)}


@router.post("", status_code=201, response_model=ResourceServerOut)
def create_resource_server(
    body: ResourceServerCreate,
    _: Annotated[Caller, Depends(require("create:resource_servers"))],
    found: Annotated[Services, Depends(services)],
) -> ResourceServerOut:
    clients.check_not_reserved(body.identifier, found.settings.issuer)
    with found.database.session() as session:
        server = clients.create_resource_server(
            session,
            name=body.name,
            identifier=body.identifier,
            scopes=[scope.model_dump() for scope in body.scopes],
            token_lifetime=body.token_lifetime,
        )
        server.auth0_settings = dict(body.no_effect)
        session.flush()
        out = ResourceServerOut.model_validate(server)
    found.directory.invalidate()
    return out


@router.get("", response_model=list[ResourceServerOut] | dict[str, Any])
def list_resource_servers(
    _: Annotated[Caller, Depends(require("read:resource_servers"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    identifiers: Annotated[
        list[str] | None,
        Query(max_length=10, description="the APIs with these identifiers (repeat it, up to 10)"),
    ] = None,
) -> Any:
    # Auth0's filter: an SDK's resourceServers.list({identifiers}) must not answer every API.
    with found.database.session() as session:
        rows, total = clients.list_resource_servers(
            session, offset=page.offset, limit=page.per_page, identifiers=identifiers
        )
        items = [ResourceServerOut.model_validate(row) for row in rows]
    return page.shape("resource_servers", items, total)


@router.get("/{id:path}", response_model=ResourceServerOut)
def get_resource_server(
    id: str,
    _: Annotated[Caller, Depends(require("read:resource_servers"))],
    found: Annotated[Services, Depends(services)],
) -> ResourceServerOut:
    with found.database.session() as session:
        return ResourceServerOut.model_validate(clients.get_resource_server(session, id))


@router.patch("/{id:path}", response_model=ResourceServerOut)
def update_resource_server(
    id: str,
    body: ResourceServerUpdate,
    _: Annotated[Caller, Depends(require("update:resource_servers"))],
    found: Annotated[Services, Depends(services)],
) -> ResourceServerOut:
    changes = body.model_dump(exclude_unset=True)
    with found.database.session() as session:
        current = clients.get_resource_server(session, id)
        shown = ResourceServerOut.model_validate(current).model_dump(mode="json")
        changed = body.changed_read_only(shown)
        if changed:
            raise InvalidInput(f"{', '.join(changed)}: read-only, and not as stored")
        if body.no_effect:
            changes["auth0_settings"] = {**current.auth0_settings, **body.no_effect}
        server = clients.update_resource_server(session, id, changes)
        out = ResourceServerOut.model_validate(server)
    found.directory.invalidate()
    return out


@router.delete("/{id:path}", status_code=204)
def delete_resource_server(
    id: str,
    _: Annotated[Caller, Depends(require("delete:resource_servers"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    with found.database.session() as session:
        clients.delete_resource_server(session, id)
    found.directory.invalidate()
    return Response(status_code=204)
