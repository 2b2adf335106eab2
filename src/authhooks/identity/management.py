"""The management API as one of this server's APIs: its name and its scopes (Auth0's
names): one list, from which the bootstrap registers the API and grants its admin
client, and which bounds what an admin user may be allowed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.storage import models
from authhooks.storage.database import bump_generation

# Invoking a declared point: every one, or one (``invoke:points:price-quote``,
# added to the management API's scopes when the point is declared through it).
INVOKE_POINTS = "invoke:points"

_RESOURCES = {
    "clients": "applications",
    "client_keys": "client secrets",
    "resource_servers": "APIs",
    "client_grants": "client grants",
    "users": "users",
    "hooks": "hooks, their versions and secrets",
    "admins": "dashboard admin users",
    "sessions": "people's sign-in sessions",
    "connections": "the database connection",
    "tenant_settings": "tenant settings",
    "git_sources": "git sources and their deployments",
    "points": "points that applications declare",
}
_ACTIONS = ("read", "create", "update", "delete")

MANAGEMENT_SCOPES: list[dict[str, str]] = [
    {"value": f"{action}:{resource}", "description": f"{action.capitalize()} {label}"}
    for resource, label in _RESOURCES.items()
    for action in _ACTIONS
] + [
    {"value": "read:logs", "description": "Read and stream hook logs"},
    {
        "value": "create:user_tickets",
        "description": "Create password change and email verification tickets",
    },
    {"value": INVOKE_POINTS, "description": "Invoke every declared point"},
]

MANAGEMENT_API_NAME = "authhooks Management API"


def point_scope(point_id: str) -> str:
    return f"{INVOKE_POINTS}:{point_id}"


def is_point_scope(scope: str) -> bool:
    return scope.startswith(INVOKE_POINTS + ":")


def add_point_scope(session: Session, point_id: str) -> None:
    """Let grants of the management API hold the scope invoking ``point_id`` alone."""
    api = _system_api(session)
    value = point_scope(point_id)
    if all(scope["value"] != value for scope in api.scopes):
        description = f"Invoke the declared point {point_id}"
        api.scopes = [*api.scopes, {"value": value, "description": description}]
        bump_generation(session)


def remove_point_scope(session: Session, point_id: str) -> None:
    """The point is gone: so is its scope, from the API and from every grant."""
    api = _system_api(session)
    value = point_scope(point_id)
    api.scopes = [scope for scope in api.scopes if scope["value"] != value]
    for grant in session.scalars(
        select(models.ClientGrant).where(models.ClientGrant.audience == api.identifier)
    ):
        if value in grant.scope:
            grant.scope = [scope for scope in grant.scope if scope != value]
    bump_generation(session)


def _system_api(session: Session) -> models.ResourceServer:
    return session.scalars(
        select(models.ResourceServer)
        .where(models.ResourceServer.is_system.is_(True))
        .with_for_update()
    ).one()
