"""GET /api/v2/users?q=: Auth0's user search syntax (its v3 engine's), answered
exactly, with pagination and totals; what it cannot answer is a 400 that says
why, never an empty list that would read as "nobody"."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server, unique
from tests.users.helpers import PASSWORD


@pytest.fixture(scope="module")
def people(server: Server) -> dict[str, dict[str, Any]]:
    """Four users sharing a tag (in their app_metadata), each unlike the others."""
    tag = unique("q").replace("-", "")
    bodies = {
        "ada": {
            "email": f"ada.{tag}@example.com",
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "app_metadata": {"tag": tag, "plan": "gold", "seats": 12, "roles": ["admin", "ops"]},
            "user_metadata": {"addresses": [{"city": "Paris"}, {"city": "Lyon"}]},
        },
        "bob": {
            "email": f"bob.{tag}@example.org",
            "name": "Bob Stone",
            "username": f"bob{tag}",
            "blocked": True,
            "app_metadata": {"tag": tag, "plan": "silver", "seats": 3, "vip": True},
        },
        "cy": {
            "email": f"cy.{tag}@example.com",
            "email_verified": True,
            "app_metadata": {"tag": tag, "plan": "gold plus", "seats": 40},
            "user_metadata": {"addresses": [{"city": "Rome"}]},
        },
        "di": {"email": f"di.{tag}@bücher.example", "app_metadata": {"tag": tag}},
    }
    made = {}
    with server.api() as api:
        for who, body in bodies.items():
            response = api.post("/users", json={"password": PASSWORD, **body})
            assert response.status_code == 201, response.text
            made[who] = response.json()
    made["_tag"] = {"value": tag}
    return made


def found(api: httpx.Client, q: str, **params: Any) -> list[str]:
    response = api.get("/users", params={"q": q, "search_engine": "v3", **params})
    assert response.status_code == 200, response.text
    return [user["email"].split(".", 1)[0] for user in response.json()]


def test_fields_values_and_operators(server: Server, people: dict[str, Any]) -> None:
    tag = people["_tag"]["value"]
    within = f"app_metadata.tag:{tag}"
    with server.api() as api:
        assert found(api, f'email:"ADA.{tag}@example.com"') == ["ada"]  # any case
        assert found(api, f"user_id:{people['bob']['user_id']}".replace("|", "\\|")) == ["bob"]
        assert found(api, f'user_id:"{people["bob"]["user_id"]}"') == ["bob"]
        assert found(api, f"email:di.{tag}@xn--bcher-kva.example") == ["di"]
        assert found(api, f"email:di.{tag}@bücher.example") == ["di"]
        assert found(api, f'{within} AND app_metadata.plan:"gold"') == ["ada"]
        assert found(api, f'{within} AND app_metadata.plan:"Gold"') == []  # metadata: as written
        assert found(api, f"{within} AND (app_metadata.plan:gold OR app_metadata.plan:silver)") == [
            "ada",
            "bob",
        ]
        assert found(api, f"{within} AND NOT app_metadata.plan:gold") == ["bob", "cy", "di"]
        assert found(api, f"{within} -blocked:true") == ["ada", "cy", "di"]
        assert found(api, f"{within} AND app_metadata.roles:ops") == ["ada"]  # in an array
        assert found(api, f"{within} AND user_metadata.addresses.city:Rome") == ["cy"]
        assert found(api, f"{within} AND app_metadata.vip:true") == ["bob"]
        assert found(api, f"{within} AND app_metadata.seats:12") == ["ada"]
        assert found(api, f"{within} AND app_metadata.seats:[10 TO 40}}") == ["ada"]
        assert found(api, f"{within} AND app_metadata.seats:[3 TO *]") == ["ada", "bob", "cy"]
        assert found(api, f"{within} AND _exists_:app_metadata.plan") == ["ada", "bob", "cy"]
        assert found(api, f"{within} AND email_verified:true") == ["cy"]
        assert found(api, f"{within} AND logins_count:[0 TO 0]") == ["ada", "bob", "cy", "di"]
        assert found(api, f"{within} AND created_at:[2000-01-01 TO *]") == [
            "ada", "bob", "cy", "di"
        ]  # fmt: skip
        assert found(api, f"{within} AND created_at:[* TO 2000-01-01T00:00:00Z]") == []
        # Wildcards, profile fields in any case, the address's domain.
        assert found(api, f"{within} AND name:ada*") == ["ada"]
        assert found(api, f"{within} AND name:*stone") == ["bob"]
        assert found(api, f"{within} AND app_metadata.plan:gold*") == ["ada", "cy"]
        assert found(api, f'{within} AND given_name:"ada"') == ["ada"]
        assert found(api, f"{within} AND email.domain:example.org") == ["bob"]
        assert found(api, f"{within} AND username:BOB{tag}") == ["bob"]
        # A word without a field: part of the email, username or a name.
        assert found(api, tag) == ["ada", "bob", "cy", "di"]
        assert found(api, f"lovelace cy.{tag}") == ["ada", "cy"]  # side by side: OR
        assert found(api, f"Lovelace AND {tag}") == ["ada"]


def test_search_pages_with_totals_sorts_and_selects_fields(
    server: Server, people: dict[str, Any]
) -> None:
    tag = people["_tag"]["value"]
    with server.api() as api:
        pages = [
            api.get(
                "/users",
                params={
                    "q": f"app_metadata.tag:{tag}",
                    "page": number,
                    "per_page": 3,
                    "include_totals": "true",
                    "sort": "email:-1",
                    "fields": "email,user_id",
                },
            ).json()
            for number in (0, 1)
        ]
        assert [page["total"] for page in pages] == [4, 4]
        assert [(page["start"], page["limit"]) for page in pages] == [(0, 3), (3, 3)]
        emails = [user["email"] for page in pages for user in page["users"]]
        assert emails == sorted(emails, reverse=True)
        assert len(emails) == 4
        assert all(set(user) == {"email", "user_id"} for page in pages for user in page["users"])
        other = api.get(
            "/users", params={"q": f"app_metadata.tag:{tag}", "connection": "google-oauth2"}
        )
        assert other.json() == []
        one = api.get(
            f"/users/{people['ada']['user_id']}",
            params={"fields": "app_metadata,identities", "include_fields": "false"},
        ).json()
        assert "app_metadata" not in one
        assert "identities" not in one
        assert one["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("last_ip:203.0.113.1", "cannot search by 'last_ip'"),
        ("user_metadata.city:Par*", "does not take wildcards"),
        ("name:*ab", "a leading wildcard needs 3 characters"),
        ("user_metadata.n:[1 TO 2]", "does not take ranges"),
        ("name:[a TO c]", "does not take ranges"),
        ("logins_count:[1 2]", "[low TO high]"),
        ("logins_count:many", "whole number"),
        ("blocked:yes", "true or false"),
        ("created_at:[yesterday TO *]", "ISO 8601"),
        ("(email:a@example.com", "is not closed"),
        ('name:"open', 'no closing "'),
        ("email:a@example.com AND", "ends where a term was expected"),
        ("email:", "needs a value"),
        ("a " * 51, "at most 50 terms"),
    ],
)
def test_what_search_cannot_answer_is_a_400(server: Server, q: str, says: str) -> None:
    with server.api() as api:
        response = api.get("/users", params={"q": q})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == "invalid_query_string"
    assert says in body["message"], body


def test_search_engine_and_sort_are_checked(server: Server) -> None:
    with server.api() as api:
        for params, says in (
            ({"q": "a", "search_engine": "v1"}, "use v3"),
            ({"sort": "password_hash:1"}, "sort is field:1 or field:-1"),
            ({"sort": "email:2"}, "sort is field:1 or field:-1"),
        ):
            response = api.get("/users", params=params)
            assert response.status_code == 400, response.text
            assert says in response.json()["message"]
