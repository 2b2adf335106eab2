"""POST /oauth/token with client credentials (RFC 6749 §4.4, §5), against a real server."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.conftest import Machine, Server, create_machine


@pytest.fixture
def machine(server: Server) -> Machine:
    return create_machine(server)


def basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: each part is form-urlencoded before Basic encoding.
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def post(server: Server, data: dict[str, str] | str, **kwargs: object) -> httpx.Response:
    if isinstance(data, str):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return httpx.post(server.url + "/oauth/token", content=data, headers=headers)
    return httpx.post(server.url + "/oauth/token", data=data, **kwargs)  # type: ignore[arg-type]


def assert_error(response: httpx.Response, status: int, error: str, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert mentions.lower() in body["error_description"].lower()
    assert "Traceback" not in response.text


def test_authlib_client_gets_a_token_that_verifies_against_jwks(
    server: Server, machine: Machine
) -> None:
    with OAuth2Client(
        machine.client_id, machine.client_secret, token_endpoint_auth_method="client_secret_basic"
    ) as oauth:
        token = oauth.fetch_token(
            server.url + "/oauth/token", grant_type="client_credentials", audience=machine.audience
        )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read:things write:things delete:things"
    discovery = httpx.get(server.url + "/.well-known/openid-configuration").json()
    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(
        token["access_token"]
    )
    claims = jwt.decode(
        token["access_token"],
        signing_key.key,
        algorithms=["RS256"],
        audience=machine.audience,
        issuer=server.issuer,
    )
    assert claims["sub"] == f"{machine.client_id}@clients"
    assert claims["client_id"] == machine.client_id
    assert claims["gty"] == "client-credentials"
    assert claims["scope"] == "read:things write:things delete:things"
    assert claims["exp"] - claims["iat"] == token["expires_in"] == 86400
    assert claims["jti"]
    header = jwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"] == signing_key.key_id


def test_client_secret_post_and_response_shape(server: Server, machine: Machine) -> None:
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "scope"}


def test_basic_auth_with_special_characters_in_credentials(
    server: Server, machine: Machine
) -> None:
    response = post(
        server,
        {"grant_type": "client_credentials", "audience": machine.audience},
        headers={"Authorization": basic(machine.client_id, machine.client_secret)},
    )
    assert response.status_code == 200, response.text


def test_resource_parameter_is_an_alias_for_audience(server: Server, machine: Machine) -> None:
    response = server.token(machine.client_id, machine.client_secret, resource=machine.audience)
    assert response.status_code == 200
    assert (
        jwt.decode(response.json()["access_token"], options={"verify_signature": False})["aud"]
        == machine.audience
    )


def test_scope_is_the_intersection_of_request_and_grant(server: Server) -> None:
    machine = create_machine(server, scopes=["a", "b", "c"], granted=["a", "b"])
    response = server.token(
        machine.client_id, machine.client_secret, audience=machine.audience, scope="b c"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "b"
    everything = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert everything.json()["scope"] == "a b"


def test_no_granted_scope_among_requested_is_invalid_scope(server: Server) -> None:
    machine = create_machine(server, scopes=["a", "b"], granted=["a"])
    response = server.token(
        machine.client_id, machine.client_secret, audience=machine.audience, scope="b"
    )
    assert_error(response, 400, "invalid_scope", "none of the requested scopes")


def test_unknown_scope_is_invalid_scope(server: Server, machine: Machine) -> None:
    response = server.token(
        machine.client_id,
        machine.client_secret,
        audience=machine.audience,
        scope="read:things fly:away",
    )
    assert_error(response, 400, "invalid_scope", "fly:away")


def test_malformed_scope_is_invalid_scope(server: Server, machine: Machine) -> None:
    response = server.token(
        machine.client_id,
        machine.client_secret,
        audience=machine.audience,
        scope='read:things "quoted"',
    )
    assert_error(response, 400, "invalid_scope", "scope tokens")


def test_grant_without_scopes_issues_a_token_without_scope(server: Server) -> None:
    machine = create_machine(server, scopes=["a"], granted=[])
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.status_code == 200
    assert "scope" not in response.json()
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert "scope" not in claims


def test_api_token_lifetime_sets_expiry(server: Server) -> None:
    machine = create_machine(server, token_lifetime=600)
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert response.json()["expires_in"] == 600


def test_missing_grant_type_is_invalid_request(server: Server, machine: Machine) -> None:
    response = post(
        server, {"client_id": machine.client_id, "client_secret": machine.client_secret}
    )
    assert_error(response, 400, "invalid_request", "grant_type is required")


def test_empty_parameter_counts_as_omitted(server: Server, machine: Machine) -> None:
    response = post(
        server,
        {"grant_type": "", "client_id": machine.client_id, "client_secret": machine.client_secret},
    )
    assert_error(response, 400, "invalid_request", "grant_type is required")


def test_repeated_parameter_is_invalid_request(server: Server, machine: Machine) -> None:
    body = (
        f"grant_type=client_credentials&client_id={machine.client_id}"
        f"&client_secret={machine.client_secret}&audience=a&audience=b"
    )
    response = post(server, body)
    assert_error(response, 400, "invalid_request", "'audience' is repeated")


def test_a_json_body_is_read_as_a_form_is(server: Server, machine: Machine) -> None:
    """Auth0 accepts JSON at the token endpoint, and its SDKs send it."""
    response = httpx.post(
        server.url + "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": machine.client_id,
            "client_secret": machine.client_secret,
            "audience": machine.audience,
            "scope": None,  # as omitted, as an empty form value is
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ('["client_credentials"]', "must be a JSON object"),
        ('{"grant_type": "client_credentials", "grant_type": "password"}', "is repeated"),
        ('{"grant_type": 1}', "'grant_type' must be a string"),
        ('{"grant_type": "client_credentials", "audience": ["a", "b"]}', "must be a string"),
        ('{"grant_type": {"nested": "x"}}', "must be a string"),
        ('{"grant_type": "client_credentials"', "not valid JSON"),
        ('{"grant_type": "client\\u0000credentials"}', "NUL character"),
        ("[" * 5000 + "]" * 5000, "not valid JSON"),
    ],
)
def test_a_bad_json_body_is_invalid_request(server: Server, body: str, mentions: str) -> None:
    response = httpx.post(
        server.url + "/oauth/token",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert_error(response, 400, "invalid_request", mentions)


def test_wrong_content_type_is_invalid_request(server: Server, machine: Machine) -> None:
    response = httpx.post(
        server.url + "/oauth/token",
        content=f"grant_type=client_credentials&client_id={machine.client_id}",
        headers={"Content-Type": "text/plain"},
    )
    assert_error(response, 400, "invalid_request", "application/x-www-form-urlencoded")


def test_over_long_parameter_is_invalid_request(server: Server, machine: Machine) -> None:
    response = server.token(machine.client_id, machine.client_secret, audience="x" * 5000)
    assert_error(response, 400, "invalid_request", "longer than")


def test_over_large_body_is_invalid_request(server: Server) -> None:
    response = post(server, {"grant_type": "client_credentials", "pad": "x" * 40_000})
    assert_error(response, 400, "invalid_request", "larger than")


def test_bad_percent_encoding_is_invalid_request(server: Server) -> None:
    response = post(server, "grant_type=client_credentials&client_id=%ff%fe")
    assert_error(response, 400, "invalid_request", "form encoding")


def test_missing_audience_is_invalid_request(server: Server, machine: Machine) -> None:
    response = server.token(machine.client_id, machine.client_secret)
    assert_error(response, 400, "invalid_request", "audience is required")


def test_conflicting_audience_and_resource(server: Server, machine: Machine) -> None:
    response = server.token(
        machine.client_id,
        machine.client_secret,
        audience=machine.audience,
        resource="https://other/",
    )
    assert_error(response, 400, "invalid_request", "audience and resource")


def test_unsupported_grant_type(server: Server, machine: Machine) -> None:
    response = post(
        server,
        {
            "grant_type": "urn:example:magic",
            "client_id": machine.client_id,
            "client_secret": machine.client_secret,
        },
    )
    assert_error(response, 400, "unsupported_grant_type", "urn:example:magic")


def test_wrong_secret_is_invalid_client_without_challenge(server: Server, machine: Machine) -> None:
    response = server.token(machine.client_id, "wrong", audience=machine.audience)
    assert_error(response, 401, "invalid_client", "authentication failed")
    assert "www-authenticate" not in response.headers


def test_unknown_client_is_invalid_client(server: Server) -> None:
    response = server.token("nobody", "nothing", audience="https://x/")
    assert_error(response, 401, "invalid_client", "authentication failed")


def test_wrong_basic_secret_gets_a_basic_challenge(server: Server, machine: Machine) -> None:
    response = post(
        server,
        {"grant_type": "client_credentials", "audience": machine.audience},
        headers={"Authorization": basic(machine.client_id, "wrong")},
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer abc"]
)
def test_malformed_authorization_header_is_invalid_client(server: Server, header: str) -> None:
    response = post(server, {"grant_type": "client_credentials"}, headers={"Authorization": header})
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_no_client_authentication_is_invalid_client(server: Server) -> None:
    assert_error(
        post(server, {"grant_type": "client_credentials"}),
        401,
        "invalid_client",
        "authentication is required",
    )


def test_client_id_without_secret_is_invalid_client(server: Server, machine: Machine) -> None:
    response = post(server, {"grant_type": "client_credentials", "client_id": machine.client_id})
    assert_error(response, 401, "invalid_client", "client_secret is required")


def test_two_authentication_methods_is_invalid_request(server: Server, machine: Machine) -> None:
    response = post(
        server,
        {
            "grant_type": "client_credentials",
            "client_id": machine.client_id,
            "client_secret": machine.client_secret,
            "audience": machine.audience,
        },
        headers={"Authorization": basic(machine.client_id, machine.client_secret)},
    )
    assert_error(response, 400, "invalid_request", "one client authentication method")


def test_client_without_the_grant_type_is_unauthorized_client(
    server: Server, machine: Machine
) -> None:
    with server.api() as api:
        assert (
            api.patch(f"/clients/{machine.client_id}", json={"grant_types": []}).status_code == 200
        )
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert_error(response, 400, "unauthorized_client", "client_credentials")


def test_audience_without_grant_is_access_denied(server: Server, machine: Machine) -> None:
    other = create_machine(server)
    response = server.token(machine.client_id, machine.client_secret, audience=other.audience)
    assert_error(response, 403, "access_denied", "create a client grant")
    unknown = server.token(machine.client_id, machine.client_secret, audience="https://nope/")
    assert_error(unknown, 403, "access_denied", "create a client grant")


def test_revoked_grant_is_access_denied(server: Server, machine: Machine) -> None:
    assert (
        server.token(
            machine.client_id, machine.client_secret, audience=machine.audience
        ).status_code
        == 200
    )
    with server.api() as api:
        assert api.delete(f"/client-grants/{machine.grant_id}").status_code == 204
    response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert_error(response, 403, "access_denied")


def test_get_is_not_allowed(server: Server) -> None:
    response = httpx.get(server.url + "/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "OPTIONS, POST"  # OPTIONS: CORS preflights
    assert response.json()["error"] == "method_not_allowed"


def test_nul_in_a_parameter_is_invalid_request(server: Server) -> None:
    response = post(server, "grant_type=client_credentials&client_id=a%00b&client_secret=x")
    assert_error(response, 400, "invalid_request", "NUL")


def test_resource_must_be_an_absolute_uri(server: Server, machine: Machine) -> None:
    for resource in ("not-a-uri", "https://api.example.com/#fragment"):
        response = server.token(machine.client_id, machine.client_secret, resource=resource)
        assert_error(response, 400, "invalid_target", "absolute URI")


def test_resource_without_grant_is_invalid_target(server: Server, machine: Machine) -> None:
    response = server.token(
        machine.client_id, machine.client_secret, resource="https://unknown.example.com/"
    )
    assert_error(response, 400, "invalid_target", "create a client grant")


def test_error_description_holds_only_allowed_characters(server: Server, machine: Machine) -> None:
    response = post(
        server,
        {
            "grant_type": '"\\é',
            "client_id": machine.client_id,
            "client_secret": machine.client_secret,
        },
    )
    assert_error(response, 400, "unsupported_grant_type")
    description = response.json()["error_description"]
    assert all(
        ch == " " or ch == "!" or "\x23" <= ch <= "\x5b" or "\x5d" <= ch <= "\x7e"
        for ch in description
    ), description


def test_empty_authorization_header_falls_back_to_the_body(
    server: Server, machine: Machine
) -> None:
    response = post(
        server,
        {
            "grant_type": "client_credentials",
            "client_id": machine.client_id,
            "client_secret": machine.client_secret,
            "audience": machine.audience,
        },
        headers={"Authorization": ""},
    )
    assert response.status_code == 200, response.text


def test_trailing_ampersand_is_accepted(server: Server, machine: Machine) -> None:
    body = (
        f"grant_type=client_credentials&client_id={machine.client_id}"
        f"&client_secret={machine.client_secret}&audience={machine.audience}&"
    )
    assert post(server, body).status_code == 200
