"""A code not exchanged in time expires: on a server of its own, with the shortest
code lifetime the settings allow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, run_server
from tests.signin.helpers import (
    CALLBACK,
    authorize_params,
    browser,
    create_web_app,
    new_person,
    pkce,
    query_of,
    sign_in,
)


@pytest.fixture
def hasty(backend: str, tmp_path: Path) -> Iterator[Server]:
    with run_server(tmp_path, backend, authorization_code_lifetime=5) as running:
        yield running


def test_a_code_expires(hasty: Server) -> None:
    app = create_web_app(hasty)
    email = new_person(hasty, app["client_id"])
    verifier, challenge = pkce()
    with browser(hasty) as person:
        callback = sign_in(person, authorize_params(app["client_id"], challenge), email)
    time.sleep(6)
    late = httpx.post(
        hasty.url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(callback)["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant", "error_description": "the code has expired"}
