"""The management API as one of this server's APIs: its name and its scopes (Auth0's
names): one list, from which the bootstrap registers the API and grants its admin
client, and which bounds what an admin user may be allowed."""

from __future__ import annotations

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
]

MANAGEMENT_API_NAME = "authhooks Management API"
