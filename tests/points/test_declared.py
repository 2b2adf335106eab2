"""Points declared from data (points/declared.py): a spec becomes a point that
runs through the flows, the runner and the management API like a built-in one,
with no other module knowing of it; and a bad spec stops the server from
starting, saying why in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authhooks.flows.engine import code_version, run_flow
from authhooks.hooks.store import FlowHook
from authhooks.logs.records import Invocation
from authhooks.points.contract import BadEvent, BadOutput, Denied
from authhooks.points.declared import (
    MAX_POINTS,
    SAMPLE_DELIVERY,
    DeclaredState,
    InvalidDeclaration,
    declare,
    declare_all,
)
from authhooks.points.registry import BUILT_IN, POINTS, PointClash, use_declared
from tests.conftest import AUTHHOOKS, BACKENDS, Server, free_port, run_server, unique
from tests.docs_examples import ROOT, blocks_of
from tests.runtime.conftest import Harness

# A test-only point, as a later point of the server's own (post-login, say) would be:
# blocking, its event and its result described by schemas.
SPEC: dict[str, Any] = {
    "id": "contract-check",
    "description": "Decide what a test caller gets back.",
    "blocking": True,
    "event_schema": {
        "type": "object",
        "required": ["user", "amount"],
        "properties": {
            "user": {"$ref": "#/$defs/user"},
            "amount": {"type": "number", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "$defs": {
            "user": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "examples": ["auth0|42"]},
                    "email": {"type": "string"},
                },
            }
        },
    },
    "result_schema": {
        "type": "object",
        "required": ["level"],
        "properties": {
            "level": {"enum": ["low", "high"]},
            "note": {"type": "string", "maxLength": 40},
        },
        "additionalProperties": False,
    },
}
SAMPLE = {"user": {"id": "auth0|42"}, "amount": 0}

# The docs' own example: its spec is declared on the test server, and its hooks run there.
HOOKS_MD = ROOT / "docs" / "hooks.md"
SECTION = "## Points declared from data"


def docs_example() -> tuple[list[dict[str, Any]], list[str]]:
    """The section's points file and its Python blocks."""
    text = HOOKS_MD.read_text().splitlines()
    start = text.index(SECTION) + 1
    end = next(
        (n for n, line in enumerate(text[start:], start) if line.startswith("## ")), len(text)
    )
    blocks = [block for block in blocks_of(HOOKS_MD)[0] if start < block.line <= end]
    specs = next(json.loads(block.code) for block in blocks if block.language == "json")
    return specs, [block.code for block in blocks if block.language == "python"]


# --- declare() ---------------------------------------------------------------------------


def test_a_spec_is_a_point_in_both_conventions() -> None:
    point = declare(SPEC)
    assert (point.id, point.blocking) == ("contract-check", True)
    assert point.hooks.signature == "def contract_check(event, context)"
    assert point.actions.signature == "def on_execute_contract_check(event, api)"
    assert point.actions.methods() == {"result": ("set",), "access": ("deny",)}
    # Made from the schema's required properties, through the $ref and its examples.
    assert point.sample_event == SAMPLE
    event = point.sample()
    state = point.initial(event)
    assert point.hooks.arguments(event, state, {"K": "v"}) == {
        "event": SAMPLE,
        "context": {"secrets": {"K": "v"}, "result": {}},
    }
    later = DeclaredState({"level": "low"})
    assert point.actions.event(event, later, {"K": "v"}) == {
        **SAMPLE,
        "secrets": {"K": "v"},
        "result": {"level": "low"},
    }
    # The spec is the point's own: changing the caller's copy changes nothing.
    spec = json.loads(json.dumps(SPEC))
    copied = declare(spec)
    spec["event_schema"]["properties"]["amount"]["minimum"] = 100
    assert copied.parse_event(SAMPLE) == SAMPLE


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"user": {"id": "a"}, "amount": "ten"}, "event at /amount: 'ten' is not of type 'number'"),
        ({"user": {"id": 7}, "amount": 1}, "event at /user/id: 7 is not of type 'string'"),
        ({"user": {"id": "a"}, "amount": 1, "tags": ["x", 2]}, "event at /tags/1:"),
        ({"user": {"id": "a"}}, "event: 'amount' is a required property"),
        ([], "event: [] is not of type 'object'"),
        ({"user": {"id": "a"}, "amount": 1, "result": {}}, "event at /result: 'result' is given"),
        ({"user": {"id": "a"}, "amount": 1, "secrets": {}}, "event at /secrets:"),
    ],
)
def test_events_are_checked_naming_where(event: Any, message: str) -> None:
    with pytest.raises(BadEvent) as refused:
        declare(SPEC).parse_event(event)
    assert str(refused.value).startswith(message)


def test_a_json_pointer_escapes_what_it_must() -> None:
    spec = {
        **SPEC,
        "event_schema": {
            "type": "object",
            "properties": {"a/b": {"type": "object", "properties": {"c~d": {"type": "string"}}}},
        },
    }
    with pytest.raises(BadEvent, match=r"^event at /a~1b/c~0d: 1 is not of type"):
        declare(spec).parse_event({"a/b": {"c~d": 1}})


def test_outputs_merge_into_the_result_which_must_fit_its_schema() -> None:
    point = declare(SPEC)
    state = point.initial(point.sample())
    state, notes = point.merge(state, {"level": "low"})
    assert (state.result, notes) == ({"level": "low"}, [])
    state, _ = point.merge(state, {"note": "checked"})
    assert state.result == {"level": "low", "note": "checked"}
    assert point.merge(state, None) == (state, [])
    # The Actions convention's calls amount to the same output.
    output = point.actions.apply(state, [("result", "set", ["level", "high"])])
    assert point.merge(state, output)[0].result == {"level": "high", "note": "checked"}
    for bad, message in [
        ({"level": "medium"}, "result at /level: 'medium' is not one of ['low', 'high']"),
        ({"other": 1}, "Additional properties are not allowed ('other' was unexpected)"),
        ({"note": "x" * 41}, "result at /note:"),
        (["low"], "must return a dict (or None), not a list"),
        ({"note": "x" * 20_000}, "exceeds 16384 bytes"),
    ]:
        with pytest.raises(BadOutput) as refused:
            point.merge(state, bad)
        assert message in str(refused.value)
    # The first hook must leave a whole result: a required key missing is its fault.
    with pytest.raises(BadOutput, match="'level' is a required property"):
        point.merge(point.initial(point.sample()), {"note": "no level"})
    for call, message in [
        (("result", "set", ["level"]), "api.result.set takes (key, value)"),
        (("access", "deny", ["a", "b"]), "api.access.deny takes (reason)"),
        (("result", "delete", ["level"]), "api.result.delete does not exist"),
    ]:
        with pytest.raises(BadOutput, match=re.escape(message)):
            point.actions.apply(state, [call])


def test_a_refusal_is_access_denied_and_any_other_failure_a_server_error() -> None:
    point = declare(SPEC)
    state = point.initial(point.sample())
    with pytest.raises(Denied) as denied:
        point.actions.apply(state, [("access", "deny", ["over the limit"])])
    refusal = point.refuse("scorer", denied.value.denial, "raised")
    assert (refusal.error, refusal.description) == ("access_denied", "over the limit")
    crashed = point.refuse("scorer", None, "timeout")
    assert (crashed.error, crashed.description) == ("server_error", "hook 'scorer' failed: timeout")


def test_a_non_blocking_point_has_no_result_and_no_api() -> None:
    spec = {key: value for key, value in SPEC.items() if key != "result_schema"}
    point = declare({**spec, "id": "contract-notice", "blocking": False})
    assert point.actions.methods() == {}
    state = point.initial(point.sample())
    # Its sample has what every delivery adds, so that the runner runs hooks that read it.
    assert point.hooks.arguments(point.sample(), state, {}) == {
        "event": {**SAMPLE, **SAMPLE_DELIVERY},
        "context": {"secrets": {}},
    }
    assert point.merge(state, {"anything": 1}) == (state, ['returned {"anything": 1}'])
    assert "result" not in point.actions.event(point.sample(), state, {})


def _spec(**changes: Any) -> dict[str, Any]:
    spec = {**SPEC, **changes}
    return {key: value for key, value in spec.items() if value is not None}


def _event_schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("not a spec", "point spec: a point spec is an object, not a string"),
        (_spec(id="Contract"), "point spec: id must be lower-case words joined by '-'"),
        (_spec(id="contract_check"), "id must be lower-case words"),
        (_spec(id="-check"), "id must be lower-case words"),
        (_spec(id="a" * 65), "at most 64 characters"),
        (_spec(id=3), "not a number"),
        (_spec(id="class"), "point spec: id 'class' is a Python keyword"),
        (_spec(id=None), "point spec: id is missing"),
        (_spec(description=None), "point 'contract-check': description is missing"),
        (_spec(description="two\nlines"), "description must be one line"),
        (_spec(description=" "), "description must be a non-empty string"),
        (_spec(blocking="yes"), "blocking must be true or false, not a string"),
        (_spec(extra=1), "unknown key 'extra'"),
        (_spec(event_schema=[]), "event_schema must be a JSON Schema object, not a list"),
        (
            _spec(event_schema={"type": "objekt"}),
            "event_schema is not a valid JSON Schema: at /type: 'objekt' is not valid",
        ),
        (
            _spec(event_schema={"type": "object", "properties": {"a": {"minimum": "0"}}}),
            "event_schema is not a valid JSON Schema: at /properties/a/minimum: '0' is not of",
        ),
        (_spec(event_schema={"type": "array"}), 'event_schema must describe an object: "type"'),
        (
            _spec(
                event_schema={
                    "type": "object",
                    "$schema": "http://json-schema.org/draft-07/schema#",
                }
            ),
            "event_schema: $schema must be https://json-schema.org/draft/2020-12/schema",
        ),
        (
            _spec(event_schema=_event_schema(a={"$ref": "#/$defs/missing"})),
            "event_schema: $ref '#/$defs/missing' does not resolve within the schema",
        ),
        (
            _spec(event_schema=_event_schema(a={"$ref": "https://example.com/user.json"})),
            "$ref 'https://example.com/user.json' does not resolve within the schema",
        ),
        (
            _spec(event_schema=_event_schema(result={"type": "object"})),
            "event_schema may not declare the property 'result'",
        ),
        (
            _spec(event_schema=_event_schema(secrets={"type": "object"})),
            "event_schema may not declare the property 'secrets'",
        ),
        (
            _spec(result_schema={"type": "object", "properties": {"a": {"type": "int"}}}),
            "result_schema is not a valid JSON Schema: at /properties/a/type:",
        ),
        (_spec(blocking=False), "result_schema is for blocking points"),
        (
            _spec(sample_event={"user": {"id": "a"}, "amount": -1}),
            "sample_event does not fit event_schema: event at /amount: -1 is less than",
        ),
        (
            _spec(
                event_schema={
                    "type": "object",
                    "required": ["code"],
                    "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                }
            ),
            "sample_event is needed: the event made from event_schema's required properties "
            "does not fit it (event at /code: '' does not match",
        ),
        (
            _spec(event_schema=_event_schema(a=json.loads('{"items":' * 40 + "{}" + "}" * 40))),
            "event_schema is nested deeper than 32 levels",
        ),
        (
            _spec(event_schema=_event_schema(**{f"p{n}": {"type": "string"} for n in range(3000)})),
            "bytes as JSON; at most 65536",
        ),
        (_spec(sample_event={"user": {"id": "a"}, "amount": float("nan")}), "not plain JSON"),
    ],
)
def test_a_bad_spec_is_refused_saying_what_is_wrong(spec: Any, message: str) -> None:
    with pytest.raises(InvalidDeclaration) as refused:
        declare(spec)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_sample_event_given_is_used_as_given() -> None:
    sample = {"user": {"id": "auth0|7", "email": "ada@example.com"}, "amount": 12.5}
    assert declare({**SPEC, "sample_event": sample}).sample_event == sample


def test_a_list_of_specs_names_the_one_that_is_wrong() -> None:
    other = {**SPEC, "id": "contract-other"}
    assert [point.id for point in declare_all([SPEC, other])] == [
        "contract-check",
        "contract-other",
    ]
    for specs, message in [
        ({"id": "x"}, "expected a list of point specs, not an object"),
        ([SPEC, SPEC], "point #2 ('contract-check'): the id is declared twice"),
        ([SPEC, {"id": 3}], "point #2: id must be lower-case words"),
        ([SPEC, {**other, "blocking": None}], "point #2 ('contract-other'): blocking must be"),
        ([SPEC] * (MAX_POINTS + 1), f"at most {MAX_POINTS} may be declared"),
    ]:
        with pytest.raises(InvalidDeclaration, match=re.escape(message)):
            declare_all(specs)


def test_declared_points_join_the_registry_beside_the_built_in_ones() -> None:
    point = declare(SPEC)
    try:
        use_declared([point])
        assert list(POINTS) == [*BUILT_IN, "contract-check"]
        assert POINTS["contract-check"] is point
        # A built-in id is refused, and nothing changes.
        for clash in (
            {**SPEC, "id": "credentials-exchange"},
            {**SPEC, "id": "post-change-password", "blocking": False, "result_schema": None},
        ):
            with pytest.raises(PointClash, match="is built in"):
                use_declared([declare({k: v for k, v in clash.items() if v is not None})])
        with pytest.raises(PointClash, match="declared twice"):
            use_declared([point, point])
        assert list(POINTS) == [*BUILT_IN, "contract-check"]
        # Declaring again replaces what was declared before.
        use_declared([declare({**SPEC, "id": "contract-other"})])
        assert list(POINTS) == [*BUILT_IN, "contract-other"]
    finally:
        use_declared([])
    assert dict(BUILT_IN) == POINTS


# --- in the sandbox, through the flow engine -------------------------------------------


def _flow_hook(name: str, script: str, **fields: Any) -> FlowHook:
    return FlowHook(
        id=unique(f"hook-{name}"),
        name=name,
        version=1,
        script=script,
        timeout_ms=5000,
        on_error=fields.pop("on_error", "fail"),
        secrets=fields.pop("secrets", {}),
        **fields,
    )


@pytest.mark.parametrize("convention", ["hooks", "actions"])
def test_starter_code_runs_on_the_sample_event(harness: Harness, convention: str) -> None:
    point = declare(SPEC)
    hook = _flow_hook("starter", point.templates[convention])
    state = point.initial(point.sample())
    records: list[Invocation] = []
    result = harness.loop.run(
        run_flow(harness.runtime, point, [hook], point.sample(), records.append)
    )
    assert result.stop is None, records[0].error
    # The starter sets the least result the schema accepts.
    assert result.state == DeclaredState({"level": "low"})
    assert state == DeclaredState()
    expected = point.actions.function if convention == "actions" else point.hooks.function
    assert harness.invoke(code_version(hook, point), _arguments(point, hook)).entry == expected


def _arguments(point: Any, hook: FlowHook) -> Any:
    event = point.sample()
    state = point.initial(event)

    def arguments(function: str) -> dict[str, Any]:
        if function == point.actions.function:
            return {"event": point.actions.event(event, state, hook.secrets)}
        return dict(point.hooks.arguments(event, state, hook.secrets))

    return arguments


HOOKS_STYLE = """\
def contract_check(event, context):
    print("sees", sorted(context["result"]))
    return {"level": "high" if event["amount"] > 100 else "low",
            "note": context["secrets"]["NOTE"]}
"""
ACTIONS_STYLE = """\
def on_execute_contract_check(event, api):
    if event["result"]["level"] == "high" and event["user"]["id"] == "auth0|bad":
        api.access.deny("not this user")
        return
    api.result.set("note", event["result"]["note"] + "+" + event["secrets"]["NOTE"])
"""


def test_a_flow_passes_the_result_from_hook_to_hook(harness: Harness) -> None:
    """Each hook of a flow sees what the ones before it set, whichever convention
    they use; a refusal stops the flow with the point's own error."""
    point = declare(SPEC)
    first = _flow_hook("first", HOOKS_STYLE, secrets={"NOTE": "a"})
    second = _flow_hook("second", ACTIONS_STYLE, secrets={"NOTE": "b"})
    records: list[Invocation] = []

    def flow(event: dict[str, Any]) -> Any:
        records.clear()
        return harness.loop.run(
            run_flow(
                harness.runtime, point, [first, second], point.parse_event(event), records.append
            )
        )

    done = flow({"user": {"id": "auth0|1"}, "amount": 500})
    assert done.stop is None
    assert done.state == DeclaredState({"level": "high", "note": "a+b"})
    assert [record.outcome for record in records] == ["ok", "ok"]
    assert any(line["text"] == "sees []" for line in records[0].console), records[0].console

    refused = flow({"user": {"id": "auth0|bad"}, "amount": 500})
    assert refused.stop is not None
    assert refused.stop.hook.name == "second"
    assert (refused.stop.refusal.error, refused.stop.refusal.description) == (
        "access_denied",
        "not this user",
    )
    assert [record.outcome for record in records] == ["ok", "raised"]


# --- a real server started with a points file ------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server declaring the test-only point and the docs' example."""
    directory = tmp_path_factory.mktemp("declared")
    points = directory / "points.json"
    points.write_text(json.dumps([SPEC, *docs_example()[0]]))
    with run_server(directory, request.param, points_file=points) as running:
        yield running


def _create(server: Server, script: str, point: str = "contract-check", **fields: Any) -> str:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("declared"), "triggerId": point, "script": script, **fields},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _test(server: Server, hook_id: str, **body: Any) -> httpx.Response:
    with server.api() as api:
        return api.post(f"/hooks/{hook_id}/test", json=body, timeout=60)


def test_the_point_is_listed_as_the_dashboard_reads_it(server: Server) -> None:
    """What the dashboard's hooks page and editor read (GET /api/v2/points): the
    point, its conventions, starter code, completions and sample event."""
    with server.api("read:hooks") as api:
        listed = api.get("/points").json()
        one = api.get("/points/contract-check")
    assert [point["id"] for point in listed] == [*BUILT_IN, "contract-check", "fraud-score"]
    assert one.status_code == 200, one.text
    body = one.json()
    assert body == next(point for point in listed if point["id"] == "contract-check")
    assert body["description"] == SPEC["description"]
    assert body["blocking"] is True
    assert body["event_schema"] == SPEC["event_schema"]
    assert body["sample_event"] == SAMPLE
    hooks, actions = body["conventions"]["hooks"], body["conventions"]["actions"]
    assert hooks["signature"] == "def contract_check(event, context)"
    assert hooks["params"] == ["event", "context"]
    assert hooks["template"].startswith("def contract_check(event, context):\n")
    assert actions["signature"] == "def on_execute_contract_check(event, api)"
    assert actions["api"] == {"result": ["set"], "access": ["deny"]}
    assert "api.result.set('level', 'low')" in actions["template"]
    hook_paths = {hint["path"]: hint["type"] for hint in hooks["hints"]}
    assert hook_paths["event.user.id"] == "string"
    assert hook_paths["event.amount"] == "number"
    assert hook_paths["context.result"] == "object"
    assert hook_paths["context.secrets"] == "object"
    action_paths = {hint["path"]: hint["type"] for hint in actions["hints"]}
    assert action_paths["event.user.id"] == "string"
    assert action_paths["event.result"] == "object"
    assert action_paths["api.result.set"] == "function"
    assert action_paths["api.access.deny"] == "function"
    # Older clients' fields.
    assert (body["function"], body["template"]) == ("contract_check", hooks["template"])


@pytest.mark.parametrize(
    ("script", "note"),
    [
        (
            "def contract_check(event, context):\n    return {'level': 'low', 'note': 'hooks'}\n",
            "hooks",
        ),
        (
            "def on_execute_contract_check(event, api):\n"
            "    api.result.set('level', 'low')\n"
            "    api.result.set('note', 'actions')\n",
            "actions",
        ),
    ],
)
def test_a_hook_of_either_convention_runs_in_the_runner(
    server: Server, script: str, note: str
) -> None:
    hook_id = _create(server, script, enabled=True)
    sample = _test(server, hook_id)
    assert sample.status_code == 200, sample.text
    assert sample.json()["outcome"] == "ok", sample.json()
    assert sample.json()["result"] == {"result": {"level": "low", "note": note}}
    # Unsaved code on a custom event, with a secret for this run only.
    custom = _test(
        server,
        hook_id,
        event={"user": {"id": "auth0|7", "email": "ada@example.com"}, "amount": 250},
        secrets={"NOTE": "from-the-test"},
        script=HOOKS_STYLE,
    )
    assert custom.status_code == 200, custom.text
    assert custom.json()["outcome"] == "ok", custom.json()
    # Secret values never leave the server, not even inside a result.
    assert custom.json()["result"] == {"result": {"level": "high", "note": "***"}}
    assert any(line["text"] == "sees []" for line in custom.json()["console"]), custom.json()


def test_an_event_outside_the_schema_is_a_400_naming_where(server: Server) -> None:
    hook_id = _create(server, HOOKS_STYLE)
    for event, message in [
        ({"user": {"id": "a"}, "amount": -5}, "event at /amount: -5 is less than the minimum of 0"),
        ({"user": {}, "amount": 1}, "event at /user: 'id' is a required property"),
        ({"user": {"id": "a"}, "amount": 1, "result": {}}, "event at /result:"),
    ]:
        response = _test(server, hook_id, event=event)
        assert response.status_code == 400, response.text
        assert message in response.json()["message"]
        assert response.json()["errorCode"] == "invalid_body"


def test_a_result_outside_the_result_schema_is_a_bad_result(server: Server) -> None:
    hook_id = _create(
        server, "def contract_check(event, context):\n    return {'level': 'extreme'}\n"
    )
    report = _test(server, hook_id).json()
    assert report["outcome"] == "bad_result", report
    assert report["result"] is None
    assert "result at /level: 'extreme' is not one of ['low', 'high']" in report["error"]["message"]
    actions = _create(
        server,
        "def on_execute_contract_check(event, api):\n    api.result.set('level', 'low')\n"
        "    api.result.set('unknown', 1)\n",
    )
    report = _test(server, actions).json()
    assert report["outcome"] == "bad_result", report
    assert "('unknown' was unexpected)" in report["error"]["message"]


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (
            "from authhooks.hook import HookError\n\n"
            "def contract_check(event, context):\n"
            "    raise HookError('over the limit', 'Ask support')\n",
            "HookError",
        ),
        (
            "def on_execute_contract_check(event, api):\n    api.access.deny('over the limit')\n",
            "api.access.deny",
        ),
    ],
)
def test_a_refusal_in_either_convention_is_shown_by_the_runner(
    server: Server, script: str, kind: str
) -> None:
    report = _test(server, _create(server, script)).json()
    assert report["outcome"] == "raised", report
    assert report["result"] is None
    assert report["error"]["type"] == kind
    assert report["error"]["message"] == f"{kind}: over the limit"


def test_the_docs_example_runs(server: Server) -> None:
    """docs/hooks.md's example point is declared here; its hooks run on its sample."""
    _, scripts = docs_example()
    assert len(scripts) == 2
    results = []
    for script in scripts:
        report = _test(server, _create(server, script, point="fraud-score")).json()
        assert report["outcome"] == "ok", report
        results.append(report["result"])
    assert results == [{"result": {"score": 10}}, {"result": {"score": 0}}]
    hooks_style = _create(server, scripts[0], point="fraud-score")
    big = _test(server, hooks_style, event={"payment": {"amount": 200_000, "currency": "EUR"}})
    assert big.json()["error"]["message"] == "HookError: amount over the limit"
    bad = _test(server, hooks_style, event={"payment": {"amount": -5, "currency": "EUR"}})
    assert bad.status_code == 400
    assert "event at /payment/amount: -5 is less than the minimum of 0" in bad.json()["message"]


def test_a_hook_for_an_undeclared_point_is_refused(server: Server) -> None:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("nowhere"), "triggerId": "contract-none", "script": "x = 1\n"},
        )
    assert response.status_code == 400
    assert "unknown triggerId 'contract-none'" in response.json()["message"]


# --- a bad points file -----------------------------------------------------------------


def _serve(tmp_path: Path, content: str | None) -> subprocess.CompletedProcess[str]:
    """``authhooks serve`` with ``content`` as its points file (None: no such file)."""
    points = tmp_path / "points.json"
    if content is not None:
        points.write_text(content)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHHOOKS_")}
    env.update(
        {
            "AUTHHOOKS_PORT": str(free_port()),
            "AUTHHOOKS_DATA_DIR": str(tmp_path / "data"),
            "AUTHHOOKS_POINTS_FILE": str(points),
        }
    )
    return subprocess.run(
        [*AUTHHOOKS, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            json.dumps([{**SPEC, "id": "credentials-exchange"}]),
            "point 'credentials-exchange' is built in: a declared point needs an id of its own",
        ),
        (
            json.dumps(
                [{**SPEC, "event_schema": {"type": "object", "properties": {"a": {"type": 1}}}}]
            ),
            "point #1 ('contract-check'): event_schema is not a valid JSON Schema: "
            "at /properties/a/type: 1 is not valid under any of the given schemas",
        ),
        ('[{"id": "contract-check",', "not JSON: Expecting property name enclosed in double"),
        ("{}", "expected a list of point specs, not an object"),
        (None, "No such file or directory"),
    ],
)
def test_a_bad_points_file_stops_the_server_in_one_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    served = _serve(tmp_path, content)
    assert served.returncode == 2, served.stderr
    lines = served.stderr.strip().splitlines()
    assert len(lines) == 1, served.stderr
    assert lines[0].startswith(f"error: points file {tmp_path / 'points.json'}: ")
    assert message in lines[0]
    assert "Traceback" not in served.stderr + served.stdout
    # Refused before anything was made.
    assert not (tmp_path / "data").exists()
