"""/api/v2/client-grants: which client may get which scopes for which API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from authhooks.api.auth import Caller, ensure_holds, require, services
from authhooks.api.models import Auth0Body, Body, Out, ScopeValue
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput
from authhooks.identity import clients
from authhooks.services import Services

router = APIRouter(prefix="/client-grants", tags=["client-grants"], route_class=StrictJSONRoute)

ScopeList = Annotated[list[ScopeValue], Field(max_length=1000)]


class ClientGrantCreate(Body):
    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    audience: Annotated[str, Field(min_length=1, max_length=600)]
    scope: ScopeList


class ClientGrantUpdate(Auth0Body):
    # What a GET answers and no PATCH sets: sent back unchanged, it is fine.
    read_only = frozenset({"id", "client_id", "audience", "created_at", "updated_at"})

    scope: ScopeList | None = None  # required; checked after the read-only fields


class ClientGrantOut(Out):
    id: str
    client_id: str
    audience: str
    scope: list[str]
    created_at: datetime
    updated_at: datetime


@router.post("", status_code=201, response_model=ClientGrantOut)
def create_client_grant(
    body: ClientGrantCreate,
    caller: Annotated[Caller, Depends(require("create:client_grants"))],
    found: Annotated[Services, Depends(services)],
) -> ClientGrantOut:
    if body.audience == found.settings.management_audience:
        ensure_holds(caller, body.scope, "create this grant")
    with found.database.session() as session:
        grant = clients.create_client_grant(
            session,
            client_id=body.client_id,
            audience=body.audience,
            scope=list(dict.fromkeys(body.scope)),
        )
        session.flush()
        out = ClientGrantOut.model_validate(grant)
    found.directory.invalidate()
    return out


@router.get("", response_model=list[ClientGrantOut] | dict[str, Any])
def list_client_grants(
    _: Annotated[Caller, Depends(require("read:client_grants"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    request: Request,
    client_id: Annotated[str | None, Query(max_length=64)] = None,
    audience: Annotated[str | None, Query(max_length=600)] = None,
    after: Annotated[
        str | None,
        Query(alias="from", max_length=64, description="checkpoint: the `next` of the last page"),
    ] = None,
    take: Annotated[
        int | None, Query(ge=1, le=100, description="checkpoint: how many to answer")
    ] = None,
    subject_type: Annotated[
        Literal["client", "user"] | None,
        Query(description="every grant here is a client's: `user` matches none"),
    ] = None,
    allow_any_organization: Annotated[
        bool | None, Query(description="no grant here is for organizations: `true` matches none")
    ] = None,
    default_for: Annotated[
        Literal["third_party_clients"] | None,
        Query(description="no grant here is a default: matches none"),
    ] = None,
) -> Any:
    # Checkpoint pagination wins when asked for: Auth0's SDKs send page and
    # per_page with every list call, from and take only when they mean them.
    checkpoint = after is not None or take is not None
    # Auth0's filters on what authhooks has none of answer none, not every grant.
    if subject_type == "user" or allow_any_organization or default_for is not None:
        return {"client_grants": []} if checkpoint else page.shape("client_grants", [], 0)
    with found.database.session() as session:
        if checkpoint:
            limit = take or 50
            rows = clients.client_grants_after(
                session, after=after, limit=limit, client_id=client_id, audience=audience
            )
            items = [ClientGrantOut.model_validate(row) for row in rows]
            # As Auth0 answers: next only while there may be more.
            more = {"next": rows[-1].id} if len(rows) == limit else {}
            return {"client_grants": items, **more}
        rows, total = clients.list_client_grants(
            session, offset=page.offset, limit=page.per_page, client_id=client_id, audience=audience
        )
        items = [ClientGrantOut.model_validate(row) for row in rows]
    return page.shape("client_grants", items, total)


@router.get("/{id}", response_model=ClientGrantOut)
def get_client_grant(
    id: str,
    _: Annotated[Caller, Depends(require("read:client_grants"))],
    found: Annotated[Services, Depends(services)],
) -> ClientGrantOut:
    with found.database.session() as session:
        return ClientGrantOut.model_validate(clients.get_client_grant(session, id))


@router.patch("/{id}", response_model=ClientGrantOut)
def update_client_grant(
    id: str,
    body: ClientGrantUpdate,
    caller: Annotated[Caller, Depends(require("update:client_grants"))],
    found: Annotated[Services, Depends(services)],
) -> ClientGrantOut:
    with found.database.session() as session:
        current = clients.get_client_grant(session, id)
        changed = body.changed_read_only(
            ClientGrantOut.model_validate(current).model_dump(mode="json")
        )
        if changed:
            raise InvalidInput(f"{', '.join(changed)}: read-only, and not as stored")
        if body.scope is None:
            raise InvalidInput("scope: Field required")
        if current.audience == found.settings.management_audience:
            ensure_holds(caller, body.scope, "update this grant")
        grant = clients.update_client_grant(session, id, list(dict.fromkeys(body.scope)))
        out = ClientGrantOut.model_validate(grant)
    found.directory.invalidate()
    return out


@router.delete("/{id}", status_code=204)
def delete_client_grant(
    id: str,
    _: Annotated[Caller, Depends(require("delete:client_grants"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    with found.database.session() as session:
        clients.delete_client_grant(session, id)
    found.directory.invalidate()
    return Response(status_code=204)
