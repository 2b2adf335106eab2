"""Calls a team's scripts make with auth0-python 6.x (Auth0's current SDK, generated
by Fern: httpx and pydantic for the Management API, requests for the
Authentication API), run by test_auth0_python6.py in a process of its own (the
SDK and its dependencies live apart from the server's). Prints one JSON object:
each call's name, and what it answered or raised."""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import auth0
from auth0.authentication import Database, GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.management import ManagementClient
from auth0.management.core.api_error import ApiError

domain, client_id, client_secret, audience, unique = sys.argv[1:6]
results: dict[str, Any] = {}
PASSWORD = "Correct-Horse-42"
CONNECTION = "Username-Password-Authentication"
PAGE_CROSSING = 55  # more than a page of the SDK's default 50
# The Authentication API's classes give up after 5 s by default: too soon on a busy
# machine (the Management API's wait 60 s).
TIMEOUT = 30.0


def answer(value: Any) -> Any:
    """What a call answered, as JSON: the SDK's models by their wire names."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [answer(item) for item in value]
    return value


def call(name: str, action: Any) -> Any:
    try:
        value = action()
    except Auth0Error as error:  # the Authentication API's
        results[name] = {
            "error": error.error_code,
            "status": error.status_code,
            "message": error.message,
            "str": str(error),
        }
        return None
    except ApiError as error:  # the Management API's
        results[name] = {
            "error": type(error).__name__,
            "status": error.status_code,
            "body": error.body,
        }
        return None
    results[name] = {"ok": answer(value)}
    return value


results["version"] = {"ok": auth0.__version__}
call(
    "token",
    lambda: GetToken(domain, client_id, client_secret, timeout=TIMEOUT).client_credentials(
        audience
    ),
)
# The SDK's own way to a management token: client credentials, for the audience
# https://<domain>/api/v2/ unless told otherwise.
management = ManagementClient(domain=domain, client_id=client_id, client_secret=client_secret)

api = f"https://{unique}.example.com/"
call(
    "create_api",
    lambda: management.resource_servers.create(
        name=unique,
        identifier=api,
        scopes=[{"value": "read:notes", "description": "read notes"}],
        signing_alg="RS256",
        allow_offline_access=False,
        token_dialect="access_token",
    ),
)
call("get_api", lambda: management.resource_servers.get(api))
call("apis", lambda: [server.identifier for server in management.resource_servers.list()])

app = call(
    "create_client",
    lambda: management.clients.create(
        name=unique,
        app_type="regular_web",
        oidc_conformant=True,
        jwt_configuration={"alg": "RS256", "lifetime_in_seconds": 36000},
        callbacks=["https://app.example.com/callback"],
        grant_types=[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "http://auth0.com/oauth/grant-type/password-realm",
        ],
    ),
)
fetched = call("get_client", lambda: management.clients.get(app.client_id))
# Sent back as read, less client_id: update takes most of it as parameters (the
# SDK's models, as GET gave them), and the rest (read-only fields, and fields
# of this server's own that the SDK keeps as extras) as further body fields.
taken = set(inspect.signature(management.clients.update).parameters)
read = answer(fetched)
del read["client_id"]
call(
    "update_client_as_read",
    lambda: management.clients.update(
        app.client_id,
        **{field: getattr(fetched, field) for field in read if field in taken},
        request_options={
            "additional_body_parameters": {k: v for k, v in read.items() if k not in taken}
        },
    ),
)
# update has no client_id parameter: a script that changes it sends it as a body field.
call(
    "update_client_read_only",
    lambda: management.clients.update(
        app.client_id,
        request_options={"additional_body_parameters": {"client_id": "another"}},
    ),
)
call("bad_client", lambda: management.clients.create(name="<b>"))

# A page and more of clients, each granted the API: the SDK's pagers walk them all,
# clients by page/per_page (with include_totals, its default), grants by
# checkpoint (take, then from = the answer's next), 50 at a time unless told.
machines = [management.clients.create(name=f"{unique}-{n}") for n in range(PAGE_CROSSING)]
for machine in machines:
    management.client_grants.create(client_id=machine.client_id, audience=api, scope=["read:notes"])
call("machines", lambda: [machine.client_id for machine in machines])
call("clients", lambda: [client.client_id for client in management.clients.list()])
call(
    "clients_by_20",
    lambda: [client.client_id for client in management.clients.list(per_page=20)],
)
call("first_clients_page", lambda: management.clients.list().response)
call(
    "grants_of_api",
    lambda: [grant.client_id for grant in management.client_grants.list(audience=api)],
)
call(
    "grants_of_api_by_10",
    lambda: [grant.client_id for grant in management.client_grants.list(audience=api, take=10)],
)
call("grants", lambda: [grant.id for grant in management.client_grants.list()])
call("first_grants_page", lambda: management.client_grants.list(audience=api, take=10).response)

email = f"{unique}@example.com"
call(
    "signup",
    lambda: Database(domain, app.client_id, timeout=TIMEOUT).signup(
        email=email, password=PASSWORD, connection=CONNECTION
    ),
)
call(
    "login",
    lambda: GetToken(domain, app.client_id, app.client_secret, timeout=TIMEOUT).login(
        username=email, password=PASSWORD, realm=CONNECTION, audience=api
    ),
)
call(
    "wrong_password",
    lambda: GetToken(domain, app.client_id, app.client_secret, timeout=TIMEOUT).login(
        username=email, password="Wrong-Horse-42", realm=CONNECTION, audience=api
    ),
)
call(
    "change_password",
    lambda: Database(domain, app.client_id, timeout=TIMEOUT).change_password(
        email=email, connection=CONNECTION
    ),
)
call("users_by_email", lambda: management.users.list_users_by_email(email=email))
call("connections", lambda: list(management.connections.list()))
call("tenant_settings", lambda: management.tenants.settings.get())

# People: Auth0's profile fields at signup, on create and on update; a search in
# Auth0's syntax (its v3 engine's); fields chosen on one user.
profiled = f"profiled-{unique}@example.com"
call(
    "signup_with_profile",
    lambda: Database(domain, app.client_id, timeout=TIMEOUT).signup(
        email=profiled,
        password=PASSWORD,
        connection=CONNECTION,
        given_name="Ada",
        family_name="Lovelace",
        name="Ada Lovelace",
        nickname="ada",
        picture="https://example.com/ada.png",
    ),
)
created = call(
    "create_user",
    lambda: management.users.create(
        connection=CONNECTION,
        email=f"created-{unique}@example.com",
        password=PASSWORD,
        name="Grace Hopper",
        nickname="grace",
        app_metadata={"plan": "gold", "team": unique},
        phone_verified=False,
    ),
)
call(
    "update_user",
    lambda: management.users.update(created.user_id, given_name="Grace", name="Rear Admiral"),
)
call(
    "search",
    lambda: [
        user.email
        for user in management.users.list(
            q=f'app_metadata.team:"{unique}" AND app_metadata.plan:gold', search_engine="v3"
        )
    ],
)
call(
    "search_by_email",
    lambda: [user.user_id for user in management.users.list(q=f'email:"{profiled}"')],
)
call("bad_search", lambda: list(management.users.list(q="last_ip:203.0.113.1")))
call(
    "user_fields",
    lambda: management.users.get(created.user_id, fields="email,user_id", include_fields=True),
)

for machine in machines:  # deleting a client deletes its grants
    management.clients.delete(machine.client_id)
call("grants_of_api_after", lambda: list(management.client_grants.list(audience=api)))
print(json.dumps(results, default=str))
