"""The management API's scopes (Auth0 names), one list for the API and the bootstrap admin."""

from __future__ import annotations

_RESOURCES = {
    "clients": "applications",
    "client_keys": "client secrets",
    "resource_servers": "APIs",
    "client_grants": "client grants",
    "users": "users",
    "hooks": "hooks, their versions and secrets",
    "admins": "dashboard admin users",
}
_ACTIONS = ("read", "create", "update", "delete")

MANAGEMENT_SCOPES: list[dict[str, str]] = [
    {"value": f"{action}:{resource}", "description": f"{action.capitalize()} {label}"}
    for resource, label in _RESOURCES.items()
    for action in _ACTIONS
] + [{"value": "read:logs", "description": "Read and stream hook logs"}]

MANAGEMENT_API_NAME = "authhooks Management API"
