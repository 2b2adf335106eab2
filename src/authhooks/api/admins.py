"""/api/v2/admins: the dashboard's admin users (identity/admins.py).

A caller can hand an admin only scopes it holds itself, and can change or
delete only an admin whose scopes it holds all of: otherwise an admin allowed
``update:admins`` alone could take over a stronger one by setting its password.
Passwords are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from authhooks.api.auth import Caller, ensure_holds, require, services
from authhooks.api.models import Body, Out, Patch, ScopeValue
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.identity import admins
from authhooks.services import Services
from authhooks.users.policy import MAX_PASSWORD_LENGTH
from authhooks.users.store import MAX_EMAIL_LENGTH

router = APIRouter(prefix="/admins", tags=["admins"], route_class=StrictJSONRoute)

Email = Annotated[str, Field(min_length=1, max_length=MAX_EMAIL_LENGTH)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Scopes = Annotated[list[ScopeValue], Field(max_length=100)]


class AdminCreate(Body):
    email: Email
    password: Password
    scopes: Scopes


class AdminUpdate(Patch):
    password: Password | None = None
    scopes: Scopes | None = None


class AdminOut(Out):
    id: str
    email: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None


@router.post("", status_code=201, response_model=AdminOut)
async def create_admin(
    body: AdminCreate,
    caller: Annotated[Caller, Depends(require("create:admins"))],
    found: Annotated[Services, Depends(services)],
) -> AdminOut:
    ensure_holds(caller, admins.check_scopes(body.scopes), "create this admin")
    admin = await found.admins.create(body.email, body.password, body.scopes, caller.author)
    return AdminOut.model_validate(admin)


@router.get("", response_model=list[AdminOut] | dict[str, Any])
def list_admins(
    _: Annotated[Caller, Depends(require("read:admins"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
) -> Any:
    with found.database.session() as session:
        rows, total = admins.list_admins(session, page.offset, page.per_page)
        items = [AdminOut.model_validate(admin) for admin in rows]
    return page.shape("admins", items, total)


@router.get("/{admin_id}", response_model=AdminOut)
def get_admin(
    admin_id: str,
    _: Annotated[Caller, Depends(require("read:admins"))],
    found: Annotated[Services, Depends(services)],
) -> AdminOut:
    with found.database.session() as session:
        return AdminOut.model_validate(admins.get_admin(session, admin_id))


@router.patch("/{admin_id}", response_model=AdminOut)
async def update_admin(
    admin_id: str,
    body: AdminUpdate,
    caller: Annotated[Caller, Depends(require("update:admins"))],
    found: Annotated[Services, Depends(services)],
) -> AdminOut:
    if body.scopes is not None:
        ensure_holds(caller, admins.check_scopes(body.scopes), "give these scopes")
    admin = await found.admins.update(
        admin_id,
        body.password,
        body.scopes,
        may_change=lambda target: ensure_holds(caller, target.scopes, "change this admin"),
    )
    return AdminOut.model_validate(admin)


@router.delete("/{admin_id}", status_code=204)
def delete_admin(
    admin_id: str,
    caller: Annotated[Caller, Depends(require("delete:admins"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    with found.database.session() as session:
        admins.delete_admin(
            session,
            admin_id,
            may_delete=lambda target: ensure_holds(caller, target.scopes, "delete this admin"),
        )
    return Response(status_code=204)
