"""Bearer-token protection of /api/v2 (RFC 6750), Auth0-style scopes, and what lies
around the resources: unknown routes and the OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authhooks.identity.tokens import ActiveKey, load_key_set, sign_access_token
from authhooks.masterkey import MasterKey
from authhooks.storage.database import Database
from tests.api.helpers import assert_api_error
from tests.conftest import Server, create_machine, unique

# Every management route, and the scope it needs.
ROUTES = [
    ("GET", "/clients", "read:clients"),
    ("POST", "/clients", "create:clients"),
    ("GET", "/clients/{client_id}", "read:clients"),
    ("PATCH", "/clients/{client_id}", "update:clients"),
    ("DELETE", "/clients/{client_id}", "delete:clients"),
    ("POST", "/clients/{client_id}/rotate-secret", "update:client_keys"),
    ("GET", "/resource-servers", "read:resource_servers"),
    ("POST", "/resource-servers", "create:resource_servers"),
    ("GET", "/resource-servers/{id}", "read:resource_servers"),
    ("PATCH", "/resource-servers/{id}", "update:resource_servers"),
    ("DELETE", "/resource-servers/{id}", "delete:resource_servers"),
    ("GET", "/client-grants", "read:client_grants"),
    ("POST", "/client-grants", "create:client_grants"),
    ("GET", "/client-grants/{id}", "read:client_grants"),
    ("PATCH", "/client-grants/{id}", "update:client_grants"),
    ("DELETE", "/client-grants/{id}", "delete:client_grants"),
    ("GET", "/hooks", "read:hooks"),
    ("POST", "/hooks", "create:hooks"),
    ("GET", "/hooks/{hook_id}", "read:hooks"),
    ("PATCH", "/hooks/{hook_id}", "update:hooks"),
    ("DELETE", "/hooks/{hook_id}", "delete:hooks"),
    ("GET", "/hooks/{hook_id}/versions", "read:hooks"),
    ("GET", "/hooks/{hook_id}/versions/{number}", "read:hooks"),
    ("POST", "/hooks/{hook_id}/versions/{number}/deploy", "update:hooks"),
    ("GET", "/hooks/{hook_id}/secrets", "read:hooks"),
    ("POST", "/hooks/{hook_id}/secrets", "update:hooks"),
    ("PATCH", "/hooks/{hook_id}/secrets", "update:hooks"),
    ("DELETE", "/hooks/{hook_id}/secrets", "update:hooks"),
    ("GET", "/hooks/{hook_id}/logs", "read:logs"),
    ("GET", "/hooks/{hook_id}/deliveries", "read:logs"),
    ("GET", "/hooks/{hook_id}/schedule", "read:hooks"),
    ("POST", "/hooks/{hook_id}/test", "update:hooks"),
    ("GET", "/points", "read:points"),
    ("POST", "/points", "create:points"),
    ("GET", "/points/{point_id}", "read:points"),
    ("PATCH", "/points/{point_id}", "update:points"),
    ("DELETE", "/points/{point_id}", "delete:points"),
    ("POST", "/points/{point_id}/invoke", "invoke:points"),
    ("GET", "/logs", "read:logs"),
    ("GET", "/logs/stream", "read:logs"),
    ("GET", "/logs/{invocation_id}", "read:logs"),
    ("GET", "/users", "read:users"),
    ("POST", "/users", "create:users"),
    ("GET", "/users/{user_id}", "read:users"),
    ("PATCH", "/users/{user_id}", "update:users"),
    ("DELETE", "/users/{user_id}", "delete:users"),
    ("GET", "/users-by-email", "read:users"),
    ("GET", "/users/{user_id}/sessions", "read:sessions"),
    ("DELETE", "/users/{user_id}/sessions", "delete:sessions"),
    ("GET", "/connections", "read:connections"),
    ("GET", "/connections/{connection_id}", "read:connections"),
    ("GET", "/connections/{connection_id}/clients", "read:connections"),
    ("GET", "/tenants/settings", "read:tenant_settings"),
    ("GET", "/attack-protection/brute-force-protection", "read:tenant_settings"),
    ("GET", "/attack-protection/suspicious-ip-throttling", "read:tenant_settings"),
    ("GET", "/admins", "read:admins"),
    ("POST", "/admins", "create:admins"),
    ("GET", "/admins/{admin_id}", "read:admins"),
    ("PATCH", "/admins/{admin_id}", "update:admins"),
    ("DELETE", "/admins/{admin_id}", "delete:admins"),
    ("POST", "/tickets/password-change", "create:user_tickets"),
    ("POST", "/tickets/email-verification", "create:user_tickets"),
    ("POST", "/jobs/verification-email", "update:users"),
    ("GET", "/git-sources", "read:git_sources"),
    ("POST", "/git-sources", "create:git_sources"),
    ("GET", "/git-sources/{source_id}", "read:git_sources"),
    ("PATCH", "/git-sources/{source_id}", "update:git_sources"),
    ("DELETE", "/git-sources/{source_id}", "delete:git_sources"),
    ("POST", "/git-sources/{source_id}/detach", "update:git_sources"),
    ("POST", "/git-sources/{source_id}/sync", "update:git_sources"),
    ("GET", "/git-sources/{source_id}/deployments", "read:git_sources"),
    ("GET", "/git-sources/{source_id}/deployments/{deployment_id}", "read:git_sources"),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


def call(
    server: Server, method: str, path: str, authorization: str | None = None
) -> httpx.Response:
    """One request to ``path`` (ids filled in); a JSON body where the route takes one."""
    headers = {"Authorization": authorization} if authorization else {}
    no_body = path.endswith(("rotate-secret", "deploy"))
    body: Any = {} if method in ("POST", "PATCH") and not no_body else None
    if method == "DELETE" and path.endswith("secrets"):
        body = ["NAME"]
    path = path.format(
        client_id="nothing",
        id="nothing",
        hook_id="nothing",
        user_id="nothing",
        connection_id="nothing",
        admin_id="nothing",
        invocation_id="nothing",
        point_id="credentials-exchange",
        number=1,
        source_id="nothing",
        deployment_id="nothing",
    )
    url = f"{server.url}/api/v2{path}"
    if path.endswith("/stream"):  # never ends by itself: the status and headers will do
        with httpx.stream(method, url, headers=headers) as response:
            if response.status_code != 200:
                response.read()  # an error answer is finite
            return response
    return httpx.request(method, url, headers=headers, json=body)


def bearer(token: str) -> str:
    return f"Bearer {token}"


# --- tokens made with the server's own signing key ----------------------------


def server_signing_key(server: Server) -> ActiveKey:
    """The key the server signs with, read the way the server reads it."""
    url = server.env.get("AUTHHOOKS_DATABASE_URL") or (
        f"sqlite:///{(server.data_dir / 'authhooks.db').resolve()}"
    )
    database = Database(url)
    try:
        with database.session() as session:
            return load_key_set(session, MasterKey.load(server.data_dir)).signing
    finally:
        database.dispose()


def management_claims(server: Server, **changes: Any) -> dict[str, Any]:
    """Claims of a valid one-minute management token for the bootstrap admin."""
    now = int(time.time())
    return {
        "iss": server.issuer,
        "aud": server.management_audience,
        "sub": f"{server.admin_id}@clients",
        "client_id": server.admin_id,
        "iat": now,
        "exp": now + 60,
        "scope": "read:clients",
        **changes,
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip_one_character(segment: str, index: int) -> str:
    replacement = "A" if segment[index] != "A" else "B"
    return segment[:index] + replacement + segment[index + 1 :]


# --- missing or malformed credentials ----------------------------------------


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=ROUTE_IDS)
def test_no_authorization_header_is_401_with_a_bearer_challenge(
    server: Server, method: str, path: str, scope: str
) -> None:
    response = call(server, method, path)
    assert_api_error(response, 401, "Bearer")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_basic_scheme_is_401(server: Server) -> None:
    credentials = base64.b64encode(f"{server.admin_id}:{server.admin_secret}".encode()).decode()
    response = call(server, "GET", "/clients", f"Basic {credentials}")
    # RFC 6750 §3.1: no bearer token, so no error code in the challenge.
    assert_api_error(response, 401, "Bearer", "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="authhooks"'


def test_bearer_without_a_token_is_401(server: Server) -> None:
    response = call(server, "GET", "/clients", "Bearer")
    assert_api_error(response, 401, "Bearer", "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="authhooks"'


@pytest.mark.parametrize(
    "authorization", ["Token abc.def.ghi", "MAC abc", "abc.def.ghi"], ids=["token", "mac", "bare"]
)
def test_other_schemes_are_401(server: Server, authorization: str) -> None:
    response = call(server, "GET", "/clients", authorization)
    assert_api_error(response, 401, "Bearer", "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 5000],
    ids=["word", "three_dots", "header_only", "long"],
)
def test_garbage_token_is_401_invalid_token(server: Server, token: str) -> None:
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "Invalid token", "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_scheme_name_is_case_insensitive(server: Server) -> None:
    token = server.management_token()
    response = call(server, "GET", "/clients", f"bearer {token}")
    assert response.status_code == 200, response.text


# --- tokens the server did not issue for this API ----------------------------


def test_token_for_another_api_is_401(server: Server) -> None:
    machine = create_machine(server)
    issued = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert issued.status_code == 200, issued.text
    response = call(server, "GET", "/clients", bearer(issued.json()["access_token"]))
    assert_api_error(response, 401, "not for this API", "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_token_whose_client_was_deleted_is_401(server: Server) -> None:
    with server.api() as api:
        client = api.post("/clients", json={"name": unique("short-lived admin")}).json()
        granted = api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": server.management_audience,
                "scope": ["read:clients"],
            },
        )
        assert granted.status_code == 201, granted.text
    issued = server.token(
        client["client_id"], client["client_secret"], audience=server.management_audience
    )
    token = issued.json()["access_token"]
    assert call(server, "GET", "/clients", bearer(token)).status_code == 200
    with server.api() as api:
        assert api.delete(f"/clients/{client['client_id']}").status_code == 204
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "no longer exists", "invalid_token")


def test_token_signed_with_the_server_key_is_accepted(server: Server) -> None:
    # The control for the forged tokens below: only the one change makes them fail.
    token = sign_access_token(management_claims(server), server_signing_key(server))
    response = call(server, "GET", "/clients", bearer(token))
    assert response.status_code == 200, response.text


def test_expired_token_is_401(server: Server) -> None:
    now = int(time.time())
    claims = management_claims(server, iat=now - 3600, exp=now - 60)
    token = sign_access_token(claims, server_signing_key(server))
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "expired", "invalid_token")


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"iss": "https://elsewhere.example.com/"}, "issuer"),
        ({"aud": "https://elsewhere.example.com/"}, "not for this API"),
        ({"client_id": None}, "client_id"),
    ],
    ids=["issuer", "audience", "no_client_id"],
)
def test_token_with_a_wrong_claim_is_401(
    server: Server, changes: dict[str, Any], mentions: str
) -> None:
    claims = {k: v for k, v in management_claims(server, **changes).items() if v is not None}
    token = sign_access_token(claims, server_signing_key(server))
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, mentions, "invalid_token")


def test_token_that_is_not_an_access_token_is_401(server: Server) -> None:
    # RFC 9068 §4: typ must be at+jwt, so an ID token or other JWT is not accepted.
    key = server_signing_key(server)
    token = jwt.encode(
        management_claims(server),
        key.private_key,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": "JWT"},
    )
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "at+jwt", "invalid_token")


@pytest.mark.parametrize("typ", [1, None, ["at+jwt"]], ids=["number", "null", "list"])
def test_token_header_with_a_typ_that_is_not_a_string_is_401(server: Server, typ: Any) -> None:
    # Anyone can send this: the kid is public (JWKS) and no signature is needed to reach typ.
    kid = server_signing_key(server).kid
    header = b64url(json.dumps({"alg": "RS256", "kid": kid, "typ": typ}).encode())
    payload = b64url(json.dumps(management_claims(server)).encode())
    response = call(server, "GET", "/clients", bearer(f"{header}.{payload}.c2lnbmF0dXJl"))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


def test_token_with_a_flipped_signature_character_is_401(server: Server) -> None:
    token = server.management_token()
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, flip_one_character(signature, len(signature) // 2)])
    assert call(server, "GET", "/clients", bearer(token)).status_code == 200
    response = call(server, "GET", "/clients", bearer(tampered))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


def test_token_with_a_changed_payload_is_401(server: Server) -> None:
    token = server.management_token("read:clients")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:clients create:clients"
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    response = call(server, "POST", "/clients", bearer(forged))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


def test_token_signed_by_another_key_under_the_server_kid_is_401(server: Server) -> None:
    kid = server_signing_key(server).kid
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        management_claims(server),
        stranger,
        algorithm="RS256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


def test_token_with_an_unknown_kid_is_401(server: Server) -> None:
    key = server_signing_key(server)
    token = jwt.encode(
        management_claims(server),
        key.private_key,
        algorithm=key.alg,
        headers={"kid": "not-a-key-of-this-server", "typ": "at+jwt"},
    )
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "not signed by a key of this server", "invalid_token")


def test_unsigned_token_is_401(server: Server) -> None:
    kid = server_signing_key(server).kid
    token = jwt.encode(
        management_claims(server), None, algorithm="none", headers={"kid": kid, "typ": "at+jwt"}
    )
    response = call(server, "GET", "/clients", bearer(token))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


def test_hmac_token_keyed_with_the_public_key_is_401(server: Server) -> None:
    # The classic algorithm confusion: HS256 with the published RSA key as the secret.
    key = server_signing_key(server)
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}).encode())
    payload = b64url(json.dumps(management_claims(server)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    response = call(server, "GET", "/clients", bearer(f"{header}.{payload}.{b64url(mac)}"))
    assert_api_error(response, 401, "Invalid token", "invalid_token")


# --- scopes ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=ROUTE_IDS)
def test_token_lacking_the_scope_is_403_insufficient_scope(
    server: Server, method: str, path: str, scope: str
) -> None:
    # A management scope that this route does not need.
    other = "read:users" if scope != "read:users" else "read:logs"
    response = call(server, method, path, bearer(server.management_token(other)))
    assert_api_error(response, 403, scope, "insufficient_scope")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=ROUTE_IDS)
def test_token_with_just_the_scope_is_admitted(
    server: Server, method: str, path: str, scope: str
) -> None:
    response = call(server, method, path, bearer(server.management_token(scope)))
    # Past authorization: the route answers (an empty body or unknown id fails on its own terms).
    assert response.status_code in (200, 400, 404), response.text


def test_create_refused_for_scope_stores_nothing(server: Server) -> None:
    def total() -> int:
        with server.api("read:clients") as api:
            return int(api.get("/clients", params={"include_totals": "true"}).json()["total"])

    before = total()
    with server.api("read:clients") as api:
        response = api.post("/clients", json={"name": unique("forbidden")})
    assert_api_error(response, 403, "create:clients", "insufficient_scope")
    assert total() == before


def test_update_scope_does_not_allow_delete(server: Server) -> None:
    with server.api() as api:
        client_id = api.post("/clients", json={"name": unique("kept")}).json()["client_id"]
    with server.api("update:clients") as api:
        response = api.delete(f"/clients/{client_id}")
    assert_api_error(response, 403, "delete:clients", "insufficient_scope")
    with server.api() as api:
        assert api.get(f"/clients/{client_id}").status_code == 200


# --- around the resources ----------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v2/nope", "/api/v2/clients/x/nope", "/api/v2/roles"])
def test_unknown_route_under_api_v2_is_a_json_404(server: Server, path: str) -> None:
    response = httpx.get(
        server.url + path, headers={"Authorization": bearer(server.management_token())}
    )
    assert_api_error(response, 404)


def test_wrong_method_is_a_json_405(server: Server) -> None:
    response = httpx.put(
        server.url + "/api/v2/clients",
        headers={"Authorization": bearer(server.management_token())},
        json={},
    )
    assert_api_error(response, 405)


def test_openapi_document_lists_the_management_paths(server: Server) -> None:
    response = httpx.get(server.url + "/api/v2/openapi.json")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    assert "/api/v2/clients" in paths
    assert {"/api/v2/resource-servers", "/api/v2/client-grants"} <= set(paths)
    assert "post" in paths["/api/v2/clients/{client_id}/rotate-secret"]


def test_every_documented_route_is_in_the_scope_table(server: Server) -> None:
    # So the scope tests above cover each route the API serves.
    paths = httpx.get(server.url + "/api/v2/openapi.json").json()["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert documented == {(method, "/api/v2" + path) for method, path, _ in ROUTES}
