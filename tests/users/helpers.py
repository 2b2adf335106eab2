"""What the user tests share: apps people sign in to, signups and password logins."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import Server, unique

PASSWORD = "Correct-Horse-42"
OTHER_PASSWORD = "Battery-Staple-97"


def create_app(server: Server, **fields: Any) -> dict[str, Any]:
    """A native (public) app allowed the password grant, unless ``fields`` say otherwise."""
    body = {"name": unique("app"), "app_type": "native", "grant_types": ["password"], **fields}
    with server.api() as api:
        response = api.post("/clients", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_api(server: Server, scopes: list[str] | None = None) -> str:
    audience = f"https://{unique('api')}.example.com/"
    scopes = ["read:notes", "write:notes"] if scopes is None else scopes
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": audience,
                "scopes": [{"value": value} for value in scopes],
            },
        )
    assert response.status_code == 201, response.text
    return audience


def signup(server: Server, client_id: str, email: str, **fields: Any) -> httpx.Response:
    body = {"client_id": client_id, "email": email, "password": PASSWORD, **fields}
    return httpx.post(server.url + "/dbconnections/signup", json=body)


def new_email(domain: str = "example.com") -> str:
    return f"{unique('user')}@{domain}"


def password_token(
    server: Server, client_id: str, username: str, password: str, audience: str, **params: str
) -> httpx.Response:
    data = {
        "grant_type": "password",
        "client_id": client_id,
        "username": username,
        "password": password,
        "audience": audience,
        **params,
    }
    return httpx.post(server.url + "/oauth/token", data=data)


def find_user(server: Server, email: str) -> dict[str, Any]:
    with server.api() as api:
        response = api.get("/users", params={"email": email})
    assert response.status_code == 200, response.text
    found = response.json()
    assert len(found) == 1, found
    user: dict[str, Any] = found[0]
    return user


def wait_for(condition: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(interval)
