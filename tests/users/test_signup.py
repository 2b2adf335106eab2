"""POST /dbconnections/signup: Auth0's shape, the password policy, and bad input."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, run_server
from tests.users.helpers import PASSWORD, create_app, find_user, new_email, signup


@pytest.fixture(scope="module")
def app(server: Server) -> dict[str, object]:
    return create_app(server)


def test_signup_stores_the_user_lower_cased(server: Server, app: dict[str, object]) -> None:
    email = new_email()
    response = signup(
        server, str(app["client_id"]), email.upper(), user_metadata={"referrer": "newsletter"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == email
    assert body["email_verified"] is False
    assert body["user_metadata"] == {"referrer": "newsletter"}
    user = find_user(server, email)
    assert user["user_id"] == "auth0|" + body["_id"]
    assert user["identities"][0]["connection"] == "Username-Password-Authentication"
    assert "argon2" not in str(user)
    assert "password_hash" not in user


def test_duplicate_email_is_a_conflict(server: Server, app: dict[str, object]) -> None:
    email = new_email()
    assert signup(server, str(app["client_id"]), email).status_code == 200
    again = signup(server, str(app["client_id"]), email.capitalize())
    assert again.status_code == 409
    assert again.json() == {
        "name": "BadRequestError",
        "code": "user_exists",
        "description": "The user already exists.",
        "statusCode": 409,
        # The same, as Auth0's SDKs read an authentication API error.
        "error": "user_exists",
        "error_description": "The user already exists.",
    }


@pytest.mark.parametrize(
    ("password", "failed"),
    [
        ("Sh0rt!", "lengthAtLeast"),
        ("alllowercaseletters", "containsAtLeast"),
        ("Password123!", "notCommon"),
    ],
)
def test_weak_passwords_say_which_rule_failed(
    server: Server, app: dict[str, object], password: str, failed: str
) -> None:
    email = new_email()
    response = signup(server, str(app["client_id"]), email, password=password)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["name"] == "PasswordStrengthError"
    assert body["code"] == "invalid_password"
    broken = [rule for rule in body["description"]["rules"] if not rule["verified"]]
    assert [rule["code"] for rule in broken] == [failed]
    assert broken[0]["message"] in body["message"]
    assert (body["error"], body["error_description"]) == ("invalid_password", body["message"])
    with server.api() as api:
        assert api.get("/users", params={"email": email}).json() == []


@pytest.mark.parametrize(
    ("fields", "status", "code", "says"),
    [
        ({"email": "not-an-email"}, 400, "invalid_signup", "email is not a valid address"),
        ({"email": "a" * 250 + "@example.com"}, 400, "invalid_body", "email"),
        ({"username": "x" * 129}, 400, "invalid_body", "username"),
        ({"username": "has space"}, 400, "invalid_signup", "username must be"),
        ({"phone_number": "555"}, 400, "invalid_signup", "E.164"),
        ({"password": "x" * 300}, 400, "invalid_body", "password"),
        ({"user_metadata": {"k": 1}}, 400, "invalid_body", "user_metadata.k"),
        ({"user_metadata": {f"k{n}": "v" for n in range(11)}}, 400, "invalid_body", "at most 10"),
        ({"user_metadata": {"a.b": "v"}}, 400, "invalid_body", "may not be empty, contain '.'"),
        ({"user_metadata": {"k": "v" * 501}}, 400, "invalid_body", "longer than 500"),
        ({"favourite_colour": "teal"}, 400, "invalid_body", "favourite_colour"),
        ({"picture": "data:image/png;base64,AAAA"}, 400, "invalid_signup", "picture must be"),
        ({"connection": "google-oauth2"}, 400, "invalid_body", "the only connection"),
        ({"client_id": "no-such-client"}, 400, "invalid_client", "unknown client_id"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    server: Server,
    app: dict[str, object],
    fields: dict[str, object],
    status: int,
    code: str,
    says: str,
) -> None:
    email = new_email()
    body = {"email": email, "client_id": str(app["client_id"]), **fields}
    response = signup(server, str(body.pop("client_id")), str(body.pop("email")), **body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert says in str(response.json()["description"])
    with server.api() as api:
        assert api.get("/users", params={"email": email}).json() == []
        if "@" in str(fields.get("email", "")):
            assert api.get("/users", params={"email": fields["email"]}).status_code == 400


def test_body_must_be_json(server: Server, app: dict[str, object]) -> None:
    form = {"client_id": str(app["client_id"]), "email": new_email(), "password": PASSWORD}
    response = httpx.post(server.url + "/dbconnections/signup", data=form)
    assert response.status_code == 415
    assert response.json()["code"] == "invalid_body"
    response = httpx.post(
        server.url + "/dbconnections/signup",
        content=b'{"email": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["description"]


def test_signup_can_be_disabled_per_client(server: Server) -> None:
    machine = create_app(server, app_type="non_interactive", grant_types=["client_credentials"])
    assert machine["signup_enabled"] is False
    response = signup(server, str(machine["client_id"]), new_email())
    assert response.status_code == 403
    assert response.json()["description"] == "public signup is disabled"
    closed = create_app(server, signup_enabled=False)
    assert signup(server, str(closed["client_id"]), new_email()).status_code == 403


def test_signup_can_be_disabled_for_everyone(backend: str, tmp_path: object) -> None:
    from pathlib import Path

    from tests.conftest import run_server

    with run_server(Path(str(tmp_path)), backend, signup_enabled="false") as closed:
        app = create_app(closed)
        response = signup(closed, str(app["client_id"]), new_email())
        assert response.status_code == 403
        assert response.json()["code"] == "operation_not_supported"


def test_signups_from_one_address_are_capped(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend, signup_max_per_ip=3) as capped:
        client_id = str(create_app(capped)["client_id"])
        assert signup(capped, client_id, new_email()).status_code == 200
        assert signup(capped, client_id, "not-an-email").status_code == 400  # counts too
        assert signup(capped, client_id, new_email()).status_code == 200
        email = new_email()
        refused = signup(capped, client_id, email)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_attempts"
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        with capped.api() as api:  # nothing was stored
            assert api.get("/users", params={"email": email}).json() == []
