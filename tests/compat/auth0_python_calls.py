"""Calls a team's scripts make with auth0-python 4.x, run by test_auth0_python.py in
a process of its own (the SDK and its dependencies live apart from the server's).
Prints one JSON object: each call's name, and what it answered or raised."""

from __future__ import annotations

import json
import sys
from typing import Any

from auth0.authentication import Database, GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0
from auth0.rest import RestClientOptions

domain, client_id, client_secret, audience, unique = sys.argv[1:6]
results: dict[str, Any] = {}
# The SDK gives up after 5 s by default: too soon on a busy machine, where a hook's
# code is checked in the sandbox before it is stored.
TIMEOUT = 30.0


def call(name: str, action: Any) -> Any:
    try:
        answer = action()
    except Auth0Error as error:
        results[name] = {
            "error": error.error_code,
            "status": error.status_code,
            "message": error.message,
        }
        return None
    results[name] = {"ok": answer}
    return answer


token = call(
    "token",
    lambda: GetToken(domain, client_id, client_secret, timeout=TIMEOUT).client_credentials(
        audience
    ),
)
management = Auth0(domain, token["access_token"], RestClientOptions(timeout=TIMEOUT))
api = f"https://{unique}.example.com/"
call(
    "create_api",
    lambda: management.resource_servers.create(
        {
            "name": unique,
            "identifier": api,
            "scopes": [{"value": "read:notes", "description": "x"}],
            "signing_alg": "RS256",
            "allow_offline_access": False,
            "token_dialect": "access_token",
        }
    ),
)
app = call(
    "create_client",
    lambda: management.clients.create(
        {
            "name": unique,
            "app_type": "regular_web",
            "oidc_conformant": True,
            "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 36000},
            "grant_types": ["http://auth0.com/oauth/grant-type/password-realm"],
            "callbacks": ["https://app.example.com/callback"],
        }
    ),
)
fetched = management.clients.get(app["client_id"])
call(
    "update_client_as_read",
    lambda: management.clients.update(
        app["client_id"], {k: v for k, v in fetched.items() if k != "client_id"}
    ),
)
call(
    "update_client_read_only",
    lambda: management.clients.update(app["client_id"], {"client_id": "another"}),
)
call("set_secret", lambda: management.clients.update(app["client_id"], {"client_secret": "x"}))
hook = call(
    "create_hook",
    lambda: management.hooks.create(
        {
            "name": unique,
            "triggerId": "credentials-exchange",
            "dependencies": {},
            "script": "module.exports = function (client, scope, audience, context, cb) {\n"
            "  cb(null, { scope });\n};\n",
        }
    ),
)
read_hook = management.hooks.get(hook["id"])
call(
    "update_hook_as_read",
    lambda: management.hooks.update(hook["id"], {k: v for k, v in read_hook.items() if k != "id"}),
)
email = f"{unique}@example.com"
call(
    "signup",
    lambda: Database(domain, app["client_id"], timeout=TIMEOUT).signup(
        email=email, password="Correct-Horse-42", connection="Username-Password-Authentication"
    ),
)
call(
    "login",
    lambda: GetToken(domain, app["client_id"], app["client_secret"], timeout=TIMEOUT).login(
        username=email,
        password="Correct-Horse-42",
        realm="Username-Password-Authentication",
        audience=api,
    ),
)
call("users_by_email", lambda: management.users_by_email.search_users_by_email(email))
call("grants", lambda: management.client_grants.all(per_page=100))
call("connections", lambda: management.connections.all())
call("bad_client", lambda: management.clients.create({"name": "<b>"}))
print(json.dumps(results, default=str))
