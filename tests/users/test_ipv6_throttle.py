"""The login throttle counts an IPv6 client by its /64, as signups are counted: one
subscriber typically holds a whole /64, so counting single addresses would give a
guesser 2^64 fresh counters. Every path that checks a password is covered: the
password grant and the dashboard's admin sign-in (reset requests, which check
none, are counted the same way: tests/mail/test_password_reset.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Server, run_server, unique
from tests.users.helpers import OTHER_PASSWORD, PASSWORD, create_api, create_app, new_email, signup

PER_USER = 3
PER_IP = 6
ADMIN_PASSWORD = "Correct-Horse-42-battery"


@pytest.fixture(scope="module", params=BACKENDS)
def throttled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp_path: Path = tmp_path_factory.mktemp("ipv6-" + request.param)
    with run_server(
        tmp_path,
        request.param,
        login_max_failures_per_user=PER_USER,
        login_max_failures_per_ip=PER_IP,
    ) as running:
        yield running


def network() -> str:
    """A fresh /64 of the documentation prefix, as "2001:db8:x:y::" (add a host part)."""
    return f"2001:db8:{unique('n')[-4:]}:{unique('n')[-4:]}::"


def post(server: Server, path: str, ip: str, **kwargs: Any) -> httpx.Response:
    # uvicorn trusts X-Forwarded-For from loopback: a stand-in for many clients.
    return httpx.post(server.url + path, headers={"X-Forwarded-For": ip}, **kwargs)


def password_grant(
    server: Server, ip: str, client_id: str, email: str, password: str, audience: str
) -> httpx.Response:
    data = {
        "grant_type": "password",
        "client_id": client_id,
        "username": email,
        "password": password,
        "audience": audience,
    }
    return post(server, "/oauth/token", ip, data=data)


def test_password_guesses_from_one_64_count_against_one_user_counter(throttled: Server) -> None:
    app = create_app(throttled)
    email = new_email()
    assert signup(throttled, app["client_id"], email).status_code == 200
    audience = create_api(throttled)
    guesser = network()
    for host in range(1, PER_USER + 1):
        wrong = password_grant(
            throttled, f"{guesser}{host:x}", app["client_id"], email, OTHER_PASSWORD, audience
        )
        assert wrong.status_code == 400, wrong.text
    # Another address of the same /64, with the right password: the /64 is locked out.
    locked = password_grant(
        throttled, f"{guesser}ffff:1:2", app["client_id"], email, PASSWORD, audience
    )
    assert locked.status_code == 429, locked.text
    # The user stays free to log in from elsewhere.
    elsewhere = password_grant(
        throttled, f"{network()}1", app["client_id"], email, PASSWORD, audience
    )
    assert elsewhere.status_code == 200, elsewhere.text


def test_guesses_on_many_logins_from_one_64_reach_the_per_ip_cap(throttled: Server) -> None:
    app = create_app(throttled)
    email = new_email()
    assert signup(throttled, app["client_id"], email).status_code == 200
    audience = create_api(throttled)
    guesser = network()
    for host in range(1, PER_IP + 1):
        answer = password_grant(
            throttled, f"{guesser}{host:x}", app["client_id"], new_email(), "x", audience
        )
        assert answer.status_code == 400, answer.text
    capped = password_grant(
        throttled, f"{guesser}abcd", app["client_id"], email, PASSWORD, audience
    )
    assert capped.status_code == 429, capped.text


def test_admin_sign_in_guesses_from_one_64_are_throttled(throttled: Server) -> None:
    email = unique("admin") + "@example.com"
    with throttled.api() as api:
        made = api.post(
            "/admins", json={"email": email, "password": ADMIN_PASSWORD, "scopes": ["read:hooks"]}
        )
    assert made.status_code == 201, made.text
    guesser = network()

    def sign_in(ip: str, password: str) -> httpx.Response:
        return post(
            throttled, "/dashboard/session", ip, json={"email": email, "password": password}
        )

    for host in range(1, PER_USER + 1):
        assert sign_in(f"{guesser}{host:x}", "wrong").status_code == 401
    assert sign_in(f"{guesser}7:7:7", ADMIN_PASSWORD).status_code == 429
    assert sign_in(f"{network()}1", ADMIN_PASSWORD).status_code == 200


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(throttled: Server) -> None:
    """A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d: one client,
    one counter, however its address is written."""
    app = create_app(throttled)
    email = new_email()
    assert signup(throttled, app["client_id"], email).status_code == 200
    audience = create_api(throttled)
    octet = int(unique("n")[-2:], 16)
    ipv4 = f"198.51.100.{octet}"
    mapped = f"::ffff:{ipv4}"
    for ip in (mapped, ipv4, mapped):  # PER_USER of them, from both spellings
        wrong = password_grant(throttled, ip, app["client_id"], email, OTHER_PASSWORD, audience)
        assert wrong.status_code == 400, wrong.text
    locked = password_grant(throttled, ipv4, app["client_id"], email, PASSWORD, audience)
    assert locked.status_code == 429, locked.text
    also = password_grant(throttled, mapped, app["client_id"], email, PASSWORD, audience)
    assert also.status_code == 429, also.text
