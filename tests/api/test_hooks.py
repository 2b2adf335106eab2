"""/api/v2/hooks: validation in the sandbox, versions, secrets, and bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import update

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.api.helpers import assert_api_error
from tests.conftest import Server, unique

GOOD = "def credentials_exchange(client, scope, audience, context):\n    return None\n"


def new_hook(server: Server, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "script": GOOD,
                "triggerId": "credentials-exchange",
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def hook_total(server: Server) -> int:
    with server.api() as api:
        return int(api.get("/hooks", params={"include_totals": "true"}).json()["total"])


def test_create_returns_auth0_shape_with_ours(server: Server) -> None:
    hook = new_hook(server)
    assert set(hook) == {
        "id",
        "name",
        "script",
        "triggerId",
        "runtime",
        "enabled",
        "order",
        "timeout_ms",
        "on_error",
        "capture_events",
        "egress",
        "dependencies",
        "resolved",
        "version",
        "source_id",
        "schedule",
        "created_at",
        "updated_at",
    }
    assert hook["source_id"] is None  # made here, not by a git source
    assert (hook["enabled"], hook["runtime"], hook["version"], hook["on_error"]) == (
        False,
        "python",
        1,
        "fail",
    )
    assert (hook["dependencies"], hook["resolved"]) == ({}, [])


def test_syntax_error_is_400_with_the_line_and_nothing_stored(server: Server) -> None:
    before = hook_total(server)
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("bad"),
                "triggerId": "credentials-exchange",
                "script": "def credentials_exchange(client, scope, audience, context):\n"
                "    return {\n\n",
            },
        )
    assert_api_error(response, 400, "line", "invalid_script")
    assert hook_total(server) == before


def test_missing_function_is_400_naming_it(server: Server) -> None:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("bad"),
                "script": "def other():\n pass\n",
                "triggerId": "credentials-exchange",
            },
        )
    assert_api_error(response, 400, "credentials_exchange", "invalid_script")


def test_unknown_point_runtime_and_oversized_code(server: Server) -> None:
    with server.api() as api:
        point = api.post("/hooks", json={"name": unique("x"), "script": GOOD, "triggerId": "nope"})
        runtime = api.post(
            "/hooks",
            json={
                "name": unique("x"),
                "script": GOOD,
                "triggerId": "credentials-exchange",
                "runtime": "ruby",
            },
        )
        big = api.post(
            "/hooks",
            json={
                "name": unique("x"),
                "script": "#" * 110_000,
                "triggerId": "credentials-exchange",
            },
        )
        name = api.post(
            "/hooks",
            json={"name": "has space", "script": GOOD, "triggerId": "credentials-exchange"},
        )
    assert_api_error(point, 400, "unknown triggerId", "invalid_body")
    assert_api_error(runtime, 400, "runtime: Input should be 'python' or 'node'", "invalid_body")
    assert_api_error(big, 400, "script", "invalid_body")
    assert_api_error(name, 400, "name", "invalid_body")


def test_duplicate_name_is_409(server: Server) -> None:
    hook = new_hook(server)
    with server.api() as api:
        again = api.post(
            "/hooks",
            json={"name": hook["name"], "script": GOOD, "triggerId": "credentials-exchange"},
        )
    assert_api_error(again, 409, hook["name"], "conflict")


def test_versions_and_deploy_errors(server: Server) -> None:
    hook, other = new_hook(server), new_hook(server)
    with server.api() as api:
        missing = api.get(f"/hooks/{hook['id']}/versions/9")
        deploy_missing = api.post(f"/hooks/{hook['id']}/versions/9/deploy")
        api.patch(f"/hooks/{other['id']}", json={"script": GOOD + "# v2\n"})
        foreign = api.post(f"/hooks/{hook['id']}/versions/2/deploy")
        one = api.get(f"/hooks/{hook['id']}/versions/1")
    assert_api_error(missing, 404, "version 9", "inexistent_resource")
    assert_api_error(deploy_missing, 404, "version 9", "inexistent_resource")
    assert_api_error(foreign, 404, "version 2", "inexistent_resource")
    assert one.json()["script"] == GOOD
    assert one.json()["deployed"] is True


def test_secrets_rules(server: Server) -> None:
    hook = new_hook(server)
    path = f"/hooks/{hook['id']}/secrets"
    with server.api() as api:
        bad_name = api.post(path, json={"1BAD": "x"})
        too_long = api.post(path, json={"BIG": "x" * 5000})
        too_many = api.post(path, json={f"S{n}": "x" for n in range(51)})
        assert api.post(path, json={"A": "1", "B": "2"}).status_code == 201
        duplicate = api.post(path, json={"A": "again"})
        missing = api.patch(path, json={"NOPE": "x"})
        assert api.patch(path, json={"A": "changed"}).status_code == 200
        assert api.request("DELETE", path, json=["B"]).status_code == 204
        listed = api.get(path).json()
        not_there = api.request("DELETE", path, json=["B"])
    assert_api_error(bad_name, 400, "1BAD")
    assert_api_error(too_long, 400, "BIG")
    assert too_many.status_code == 400
    assert_api_error(duplicate, 409, "A", "conflict")
    assert_api_error(missing, 404, "NOPE", "inexistent_resource")
    assert listed == {"A": "_VALUE_NOT_SHOWN_"}
    assert_api_error(not_there, 404, "B", "inexistent_resource")


def test_enabling_code_that_no_longer_loads_is_400(server: Server) -> None:
    hook = new_hook(server)
    url = server.database_url
    database = Database(url)
    try:
        with database.session() as session:  # as if the interpreter had changed under it
            session.execute(
                update(models.HookVersion)
                .where(models.HookVersion.hook_id == hook["id"])
                .values(script="def credentials_exchange(:\n")
            )
    finally:
        database.dispose()
    with server.api() as api:
        response = api.patch(f"/hooks/{hook['id']}", json={"enabled": True})
        assert api.get(f"/hooks/{hook['id']}").json()["enabled"] is False
    assert_api_error(response, 400, "does not load", "invalid_script")


def test_concurrent_updates_never_lose_a_version(server: Server) -> None:
    hook = new_hook(server)

    def save(n: int) -> int:
        with server.api() as api:
            response = api.patch(f"/hooks/{hook['id']}", json={"script": GOOD + f"# {n}\n"})
            return response.status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(save, range(6)))
    assert codes == [200] * 6
    with server.api() as api:
        versions = api.get(f"/hooks/{hook['id']}/versions").json()
        scripts = {
            api.get(f"/hooks/{hook['id']}/versions/{v['number']}").json()["script"]
            for v in versions
        }
    assert sorted(v["number"] for v in versions) == list(range(1, 8))
    assert scripts == {GOOD} | {GOOD + f"# {n}\n" for n in range(6)}


def test_delete_removes_versions_and_secrets(server: Server) -> None:
    hook = new_hook(server)
    with server.api() as api:
        api.post(f"/hooks/{hook['id']}/secrets", json={"A": "1"})
        assert api.delete(f"/hooks/{hook['id']}").status_code == 204
        assert api.get(f"/hooks/{hook['id']}").status_code == 404
        assert api.get(f"/hooks/{hook['id']}/versions").status_code == 404
        assert api.get(f"/hooks/{hook['id']}/secrets").status_code == 404


def test_hook_scopes_are_enforced(server: Server) -> None:
    with server.api("read:hooks") as reader:
        response = reader.post(
            "/hooks",
            json={"name": unique("x"), "script": GOOD, "triggerId": "credentials-exchange"},
        )
    assert_api_error(response, 403, "create:hooks", "insufficient_scope")


def test_a_refused_patch_stores_no_version(server: Server) -> None:
    hook, other = new_hook(server), new_hook(server)
    with server.api() as api:
        response = api.patch(
            f"/hooks/{hook['id']}", json={"script": GOOD + "# new\n", "name": other["name"]}
        )
        versions = api.get(f"/hooks/{hook['id']}/versions").json()
    assert_api_error(response, 409, other["name"], "conflict")
    assert [v["number"] for v in versions] == [1]


def test_odd_input_is_4xx_not_500(server: Server) -> None:
    hook = new_hook(server)
    with server.api() as api:
        huge = api.get(f"/hooks/{hook['id']}/versions/99999999999999999999999")
        deploy = api.post(f"/hooks/{hook['id']}/versions/0/deploy")
        surrogate = api.post(
            f"/hooks/{hook['id']}/secrets",
            content=b'{"A": "\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
        bad_patch = api.patch(f"/hooks/{hook['id']}/secrets", json={"1BAD": "x"})
    assert huge.status_code == 400
    assert deploy.status_code == 400
    assert_api_error(surrogate, 400, "unpaired surrogate")
    assert_api_error(bad_patch, 400, "1BAD")


def test_a_page_read_while_its_hooks_are_deleted_leaves_them_out(server: Server) -> None:
    """Listing never fails because a hook on the page went away meanwhile."""
    point = {"triggerId": "post-change-password"}
    script = "def post_change_password(user, context):\n    return None\n"
    doomed = [new_hook(server, script=script, **point)["id"] for _ in range(20)]

    def delete_them() -> None:
        with server.api() as api:
            for hook_id in doomed:
                assert api.delete(f"/hooks/{hook_id}").status_code == 204

    answers: list[int] = []
    with ThreadPoolExecutor(1) as pool, server.api() as api:
        deleting = pool.submit(delete_them)
        while not deleting.done():
            response = api.get("/hooks", params={**point, "per_page": 100})
            answers.append(response.status_code)
        deleting.result()
    assert answers
    assert set(answers) == {200}, answers
