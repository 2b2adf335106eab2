"""Assertions and small builders shared by the management API tests."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any

import httpx

from tests.conftest import unique

JSON = {"Content-Type": "application/json"}
MAX_BODY = 256 * 1024


def assert_api_error(
    response: httpx.Response, status: int, mentions: str = "", error_code: str | None = None
) -> dict[str, Any]:
    """A 4xx JSON error in Auth0's shape, without a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert set(body) - {"errorCode"} == {"statusCode", "error", "message"}
    assert body["statusCode"] == status
    assert body["error"] == HTTPStatus(status).phrase
    assert mentions in body["message"]
    if error_code is not None:
        assert body["errorCode"] == error_code
    return body


def moment(timestamp: str) -> datetime:
    """A response timestamp, compared as a time (the text drops zero microseconds)."""
    return datetime.fromisoformat(timestamp)


def create_client(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/clients", json={"name": unique("client"), **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
