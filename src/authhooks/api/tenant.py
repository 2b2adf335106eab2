"""What Auth0's tools read of a tenant beyond its clients, APIs, grants, users and
hooks, answered truthfully so that they work unchanged (the Deploy CLI's
``a0deploy export`` reads every one of these):

- ``/connections``: the one database connection, ``Username-Password-Authentication``,
  with the clients people may sign up through as its enabled clients;
- ``/tenants/settings``: what of Auth0's tenant settings exists here, read from
  the server's settings;
- Auth0 features authhooks does not have — rules (hooks and post-login replace
  them), rules configs, the Actions API (hooks hold Actions' code, under
  /hooks), log streams, event streams, forms, flows, self-service
  profiles, phone providers and templates: empty lists, in Auth0's shapes, so
  that an export says "none" rather than failing. Reading them needs only a
  valid management token: they hold nothing. They are left out of the OpenAPI
  document, which describes what authhooks itself has.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy import select

from authhooks.api.auth import Caller, authenticate, require, services
from authhooks.api.errors import ApiError
from authhooks.api.fields import FieldSelection, field_selection
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.config import Settings
from authhooks.errors import InvalidInput, NotFound
from authhooks.points import shapes
from authhooks.services import Services
from authhooks.storage import models

router = APIRouter(tags=["tenant"], route_class=StrictJSONRoute)
Authenticated = Annotated[Caller, Depends(authenticate)]


def _connection(found: Services) -> dict[str, Any]:
    with found.database.session() as session:
        enabled = list(
            session.scalars(
                select(models.Client.client_id)
                .where(models.Client.signup_enabled.is_(True))
                .order_by(models.Client.created_at, models.Client.client_id)
            )
        )
    policy = found.settings
    return {
        "id": shapes.CONNECTION_ID,
        "name": shapes.CONNECTION_NAME,
        "display_name": shapes.CONNECTION_NAME,
        "strategy": "auth0",
        "is_domain_connection": False,
        "realms": [shapes.CONNECTION_NAME],
        "enabled_clients": enabled,
        "options": {
            "disable_signup": not policy.signup_enabled,
            "requires_username": False,
            "brute_force_protection": True,
            "password_complexity_options": {"min_length": policy.password_min_length},
            "password_no_personal_info": {"enable": False},
            "password_dictionary": {"enable": policy.password_refuse_common},
        },
    }


@router.get("/connections")
def list_connections(
    _: Annotated[Caller, Depends(require("read:connections"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
    # Auth0's strategy filter may be repeated (node-auth0 sends an array so): the
    # connections of any of them, not of the last one named.
    strategy: Annotated[list[str] | None, Query()] = None,
    name: str | None = None,
) -> Any:
    connection = _connection(found)
    matches = (strategy is None or "auth0" in strategy) and (
        name is None or name == shapes.CONNECTION_NAME
    )
    items = [connection] if matches and page.page == 0 else []
    return selection.shaped(page.shape("connections", items, 1 if matches else 0), "connections")


@router.get("/connections/{connection_id}")
def get_connection(
    connection_id: str,
    _: Annotated[Caller, Depends(require("read:connections"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
) -> Any:
    if connection_id != shapes.CONNECTION_ID:
        raise NotFound(f"no connection with id {connection_id!r}")
    return selection.shaped(_connection(found))


@router.get("/connections/{connection_id}/clients")
def connection_clients(
    connection_id: str,
    _: Annotated[Caller, Depends(require("read:connections"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, Any]:
    """The clients people may sign up and sign in through (Auth0's enabled clients)."""
    if connection_id != shapes.CONNECTION_ID:
        raise NotFound(f"no connection with id {connection_id!r}")
    enabled = _connection(found)["enabled_clients"]
    return {"clients": [{"client_id": client_id} for client_id in enabled]}


@router.get("/tenants/settings")
def tenant_settings(
    _: Annotated[Caller, Depends(require("read:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
) -> Any:
    return selection.shaped(_tenant_settings(found.settings))


def _tenant_settings(settings: Settings) -> dict[str, Any]:
    return {
        "friendly_name": "authhooks",
        "default_audience": settings.default_audience,
        "session_lifetime": settings.login_session_max // 3600,
        "idle_session_lifetime": settings.login_session_idle // 3600,
        "enabled_locales": ["en"],
        "flags": {},
    }


def _empty(path: str, key: str) -> None:
    async def answer(_: Authenticated, page: Annotated[Pagination, Depends(pagination)]) -> Any:
        return page.shape(key, [], 0)

    answer.__name__ = f"list_{key}"
    router.add_api_route(path, answer, methods=["GET"], include_in_schema=False)


for _path, _key in (
    ("/rules", "rules"),
    ("/log-streams", "log_streams"),
    ("/forms", "forms"),
    ("/flows", "flows"),
    ("/flows/vault/connections", "connections"),
    ("/self-service-profiles", "self_service_profiles"),
):
    _empty(_path, _key)


@router.get("/actions/actions", include_in_schema=False)
async def actions(_: Authenticated) -> dict[str, Any]:
    # Hooks are Auth0 Actions' code here, under /hooks: the Actions API itself has none.
    return {"actions": [], "total": 0, "page": 0, "per_page": 50}


@router.get("/actions/triggers", include_in_schema=False)
async def action_triggers(_: Authenticated) -> dict[str, Any]:
    return {"triggers": []}


@router.get("/actions/modules", include_in_schema=False)
async def action_modules(_: Authenticated) -> dict[str, Any]:
    return {"modules": [], "total": 0, "page": 0, "per_page": 50}


@router.get("/rules-configs", include_in_schema=False)
async def rules_configs(_: Authenticated) -> list[Any]:
    return []


@router.get("/event-streams", include_in_schema=False)
async def event_streams(_: Authenticated) -> dict[str, Any]:
    return {"eventStreams": []}


@router.get("/branding/phone/providers", include_in_schema=False)
async def phone_providers(_: Authenticated) -> dict[str, Any]:
    return {"providers": []}


@router.get("/branding/phone/templates", include_in_schema=False)
async def phone_templates(_: Authenticated) -> dict[str, Any]:
    return {"templates": []}


@router.get("/connections-directory-provisionings", include_in_schema=False)
async def directory_provisionings(_: Authenticated) -> list[Any]:
    return []


class FeatureNotEnabled(ApiError):
    """An Auth0 feature this server does not have at all: Auth0's own answer for a
    feature a tenant lacks, which its tools skip with a warning."""

    status = 403
    code = "feature_not_enabled"


# Multi-factor authentication: Auth0's tools skip it on this answer. (Features
# that they look for and skip on a 404 — branding, prompts, roles, organizations,
# custom domains, attack protection, email templates and others — get that.)
_ABSENT = {
    "/guardian/factors/{rest:path}": "multi-factor authentication",
    "/attack-protection/bot-detection": "bot detection",
    "/attack-protection/captcha": "captcha",
    "/supplemental-signals": "supplemental signals",
    "/token-exchange-profiles": "token exchange profiles",
}


def _absent(path: str, feature: str) -> None:
    async def refuse(_: Authenticated) -> None:
        raise FeatureNotEnabled(f"authhooks has no {feature}")

    router.add_api_route(path, refuse, methods=["GET"], include_in_schema=False)


for _path, _feature in _ABSENT.items():
    _absent(_path, _feature)


@router.get("/guardian/policies", include_in_schema=False)
async def guardian_policies(_: Authenticated) -> list[Any]:
    return []  # no multi-factor authentication, so no policy asks for it


@router.put("/guardian/policies", include_in_schema=False)
async def set_guardian_policies(_: Authenticated, policies: list[str]) -> list[str]:
    # "No policy" is what is here already; any other is multi-factor authentication.
    if policies:
        raise FeatureNotEnabled("authhooks has no multi-factor authentication")
    return []


@router.get("/custom-domains", include_in_schema=False)
async def custom_domains(_: Authenticated) -> list[Any]:
    return []  # the issuer is the domain: AUTHHOOKS_ISSUER


# Attack protection, as far as it exists here: the login throttle is Auth0's
# brute-force protection (per user and address) and its per-address cap the
# suspicious-IP throttling; breached-password detection does not exist.


@router.get("/attack-protection/brute-force-protection")
def brute_force_protection(
    _: Annotated[Caller, Depends(require("read:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, Any]:
    return {
        "enabled": True,
        "shields": ["block"],
        "mode": "count_per_identifier_and_ip",
        "allowlist": [],
        "max_attempts": found.settings.login_max_failures_per_user,
    }


@router.get("/attack-protection/suspicious-ip-throttling")
def suspicious_ip_throttling(
    _: Annotated[Caller, Depends(require("read:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, Any]:
    window_ms = found.settings.login_failure_window * 1000
    attempts = found.settings.login_max_failures_per_ip
    return {
        "enabled": True,
        "shields": ["block"],
        "allowlist": [],
        "stage": {
            "pre-login": {"max_attempts": attempts, "rate": window_ms // attempts},
            "pre-user-registration": {
                "max_attempts": found.settings.signup_max_per_ip,
                "rate": 3_600_000 // found.settings.signup_max_per_ip,
            },
        },
    }


@router.get("/attack-protection/breached-password-detection", include_in_schema=False)
async def breached_password_detection(_: Authenticated) -> dict[str, Any]:
    return {
        "enabled": False,
        "shields": [],
        "admin_notification_frequency": [],
        "method": "standard",
    }


# Universal login prompts: the hosted pages are this server's own (docs/sign-in.md),
# with no settings, custom text or partials to export.


@router.get("/prompts", include_in_schema=False)
async def prompts(_: Authenticated) -> dict[str, Any]:
    return {"universal_login_experience": "new", "identifier_first": False}


@router.get("/prompts/{prompt}/custom-text/{language}", include_in_schema=False)
async def prompt_text(prompt: str, language: str, _: Authenticated) -> dict[str, Any]:
    return {}


@router.get("/prompts/{prompt}/partials", include_in_schema=False)
async def prompt_partials(prompt: str, _: Authenticated) -> dict[str, Any]:
    return {}


# Settings that the server's configuration holds (docs/operations.md) take a
# PATCH of what they answer — an import of an unchanged export — and refuse any
# change with the setting to change instead.


def _as_answered(current: dict[str, Any], sent: dict[str, Any], where: str) -> dict[str, Any]:
    changed = sorted(name for name, value in sent.items() if current.get(name, value) != value)
    if changed:
        raise InvalidInput(f"{', '.join(changed)}: {where}")
    return current


@router.patch("/attack-protection/brute-force-protection", include_in_schema=False)
def set_brute_force_protection(
    caller: Annotated[Caller, Depends(require("update:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    current = brute_force_protection(caller, found)
    return _as_answered(current, body, "set by AUTHHOOKS_LOGIN_MAX_FAILURES_PER_USER")


@router.patch("/attack-protection/suspicious-ip-throttling", include_in_schema=False)
def set_suspicious_ip_throttling(
    caller: Annotated[Caller, Depends(require("update:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    current = suspicious_ip_throttling(caller, found)
    return _as_answered(
        current, body, "set by AUTHHOOKS_LOGIN_MAX_FAILURES_PER_IP and AUTHHOOKS_SIGNUP_MAX_PER_IP"
    )


@router.patch("/attack-protection/breached-password-detection", include_in_schema=False)
async def set_breached_password_detection(
    caller: Authenticated, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    current = await breached_password_detection(caller)
    return _as_answered(current, body, "authhooks has no breached-password detection")


@router.patch("/tenants/settings", include_in_schema=False)
def set_tenant_settings(
    caller: Annotated[Caller, Depends(require("update:tenant_settings"))],
    found: Annotated[Services, Depends(services)],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    current = _tenant_settings(found.settings)
    return _as_answered(current, body, "set by the server's settings (docs/operations.md)")


@router.patch("/connections/{connection_id}", include_in_schema=False)
def set_connection(
    connection_id: str,
    caller: Annotated[Caller, Depends(require("update:connections"))],
    found: Annotated[Services, Depends(services)],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    if connection_id != shapes.CONNECTION_ID:
        raise NotFound(f"no connection with id {connection_id!r}")
    current = _connection(found)
    options = body.pop("options", None)
    if options is not None:
        _as_answered(current["options"], options, "set by the server's settings")
    return _as_answered(current, body, "the database connection is the server's own")


@router.patch("/prompts", include_in_schema=False)
async def set_prompts(
    caller: Authenticated, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return _as_answered(await prompts(caller), body, "the hosted pages have no such setting")


@router.get("/risk-assessments/settings", include_in_schema=False)
async def risk_assessment(_: Authenticated) -> dict[str, Any]:
    return {"enabled": False}


@router.patch("/risk-assessments/settings", include_in_schema=False)
async def set_risk_assessment(
    _: Authenticated, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return _as_answered(await risk_assessment(_), body, "authhooks has no risk assessment")


@router.get("/risk-assessments/settings/new-device", include_in_schema=False)
async def new_device(_: Authenticated) -> dict[str, Any]:
    return {"remember_for": 0}


@router.patch("/risk-assessments/settings/new-device", include_in_schema=False)
async def set_new_device(
    _: Authenticated, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return _as_answered(await new_device(_), body, "authhooks has no risk assessment")
