"""Every point's starter code, in both conventions, loads and runs against its
sample event in the real sandbox, and its output passes the point's own rules."""

from __future__ import annotations

from typing import Any

import pytest

from authhooks.flows.engine import code_version
from authhooks.hooks import lifecycle
from authhooks.hooks.store import FlowHook
from authhooks.points.contract import BadOutput, Denied
from authhooks.points.registry import POINTS
from authhooks.points.token import API, TokenState, merge
from authhooks.runtime.supervisor import Entry
from tests.runtime.conftest import Harness


def test_the_built_in_points_are_declared() -> None:
    assert list(POINTS) == [
        "credentials-exchange",
        "password-exchange",
        "pre-user-registration",
        "post-user-registration",
        "post-change-password",
        "post-login",
        "schedule",
    ]
    assert [p.blocking for p in POINTS.values()] == [True, True, True, False, False, True, False]


def _hook(point_id: str, template: str, runtime: str) -> FlowHook:
    return FlowHook(
        id=f"starter-{point_id}-{template}",
        name="starter",
        version=1,
        script=POINTS[point_id].templates[template],
        timeout_ms=5000,
        on_error="fail",
        secrets={"API_KEY": "k" * 8},
        runtime=runtime,
    )


@pytest.mark.parametrize(
    ("template", "runtime"),
    [("hooks", "python"), ("actions", "python"), ("hooks.js", "node"), ("actions.js", "node")],
)
@pytest.mark.parametrize("point_id", sorted(POINTS))
def test_starter_code_runs_on_the_sample_event(
    harness: Harness, point_id: str, template: str, runtime: str
) -> None:
    point = POINTS[point_id]
    hook = _hook(point_id, template, runtime)
    event = point.sample()
    state = point.initial(event)

    def arguments(entry: Entry) -> dict[str, Any]:
        if entry.api is not None:
            return {"event": point.actions.event(event, state, hook.secrets)}
        return point.hooks.arguments(event, state, hook.secrets)

    outcome = harness.invoke(code_version(hook, point), arguments)
    assert outcome.ok, outcome
    actions = template.startswith("actions")
    expected = lifecycle.entries(point, runtime)[0 if actions else -1].function
    assert outcome.entry == expected
    if actions:
        assert outcome.calls is not None
        calls = [(call.namespace, call.method, call.args) for call in outcome.calls]
        point.merge(state, point.actions.apply(state, calls))
    else:
        assert outcome.calls is None
        point.merge(state, outcome.result)


def test_the_two_conventions_make_the_same_token() -> None:
    state = TokenState(("read", "write"), defined=frozenset({"read", "write", "admin"}))
    actions = POINTS["credentials-exchange"].actions
    output = actions.apply(
        state,
        [
            ("access_token", "set_custom_claim", ["https://e.com/tier", "gold"]),
            ("access_token", "remove_scope", ["write"]),
            ("access_token", "add_scope", ["admin"]),
        ],
    )
    hooks_output = {"https://e.com/tier": "gold", "scope": ["read", "admin"]}
    assert merge(state, output) == merge(state, hooks_output)
    with pytest.raises(Denied) as denied:
        actions.apply(state, [("access", "deny", ["invalid_scope", "no admin for you"])])
    assert denied.value.denial.code == "invalid_scope"
    for bad in (
        [("access", "deny", ["not_a_code", "why"])],
        [("access_token", "set_custom_claim", ["only a name"])],
        [("access_token", "add_scope", [42])],
    ):
        with pytest.raises(BadOutput):
            actions.apply(state, bad)
    assert set(API) == {"access_token", "access"}


def test_token_merge_rules() -> None:
    state = TokenState(("a",))
    new, notes = merge(state, {"scope": ["a", "b"], "https://e.com/x": 1, "sub": "x", "foo": 2})
    assert new == TokenState(("a", "b"), {"https://e.com/x": 1})
    assert any("'sub'" in note and "cannot be overwritten" in note for note in notes)
    assert any("'foo'" in note and "namespaced" in note for note in notes)
    assert merge(state, None) == (state, [])
    for bad in (
        ["not", "a", "dict"],
        {"scope": "a b"},
        {"scope": ["has space"]},
        {"https://e.com/big": "x" * 20_000},
    ):
        with pytest.raises(BadOutput):
            merge(state, bad)
