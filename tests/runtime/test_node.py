"""How a JavaScript hook's call ends, as Webtask and Auth0 Actions ended theirs:
the callback, a promise, or both; errors of every shape; the Actions api."""

from __future__ import annotations

from typing import Any

import pytest

from authhooks.runtime.outcome import ApiCall, HookRaised
from authhooks.runtime.supervisor import Entry
from tests.runtime.conftest import Harness


@pytest.fixture(autouse=True)
def _node(harness: Harness) -> None:
    if harness.runtime.sandbox.node is None:
        pytest.skip(f"JavaScript hooks cannot run here: {harness.runtime.sandbox.node_unavailable}")


def result(harness: Harness, source: str, args: dict[str, Any] | None = None) -> Any:
    outcome = harness.invoke(harness.js_version(source), args or {"x": 1})
    assert outcome.ok, outcome
    return outcome.result


@pytest.mark.parametrize(
    "source",
    [
        "module.exports = function (x, cb) { cb(null, x + 1); };",
        "module.exports = function (x, cb) { setTimeout(() => cb(null, x + 1), 10); };",
        "module.exports = async function (x) { return x + 1; };",
        "module.exports = (x) => Promise.resolve(x + 1);",
        # An async function that takes the callback ends when it calls it, late.
        "module.exports = async function (x, cb) { setTimeout(() => cb(null, x + 1), 20); };",
        # The first answer counts; later ones are ignored.
        "module.exports = function (x, cb) { cb(null, x + 1); cb(null, 'again'); };",
    ],
)
def test_a_call_ends_with_its_first_answer(harness: Harness, source: str) -> None:
    assert result(harness, source) == 2


def test_an_async_function_that_takes_the_callback_can_refuse_through_it(
    harness: Harness,
) -> None:
    outcome = harness.invoke(
        harness.js_version(
            "module.exports = async function (x, cb) {\n"
            "  setTimeout(() => cb(new InvalidScopeError('no')), 20);\n"
            "};\n"
        ),
        {"x": 1},
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert (outcome.failure.type, outcome.failure.message) == ("InvalidScopeError", "no")


@pytest.mark.parametrize(
    ("thrown", "kind", "message"),
    [
        ("new Error('plain')", "Error", "plain"),
        ("'a string'", "String", "a string"),
        ("Object.create(null)", "Error", "the hook threw what cannot be read"),
        (
            "new Proxy({}, { get() { throw new Error('no'); }, getPrototypeOf() {"
            " throw new Error('no'); } })",
            "Error",
            "the hook threw what cannot be read",
        ),
    ],
)
def test_whatever_is_thrown_fails_the_call(
    harness: Harness, thrown: str, kind: str, message: str
) -> None:
    for source in (
        f"module.exports = function (x, cb) {{ throw {thrown}; }};",
        f"module.exports = async function (x) {{ throw {thrown}; }};",
        f"module.exports = function (x, cb) {{ cb({thrown}); }};",
    ):
        outcome = harness.invoke(harness.js_version(source), {"x": 1}, timeout=5)
        assert isinstance(outcome.failure, HookRaised), (source, outcome)
        assert (outcome.failure.type, outcome.failure.message) == (kind, message), source
    harness.healthy_js()


def test_an_error_after_the_answer_is_dropped(harness: Harness) -> None:
    source = (
        "module.exports = function (x, cb) {\n"
        "  cb(null, 'answered');\n"
        "  setTimeout(() => { throw new Error('late'); }, 5);\n"
        "};\n"
    )
    assert result(harness, source) == "answered"
    harness.healthy_js()


def test_actions_api_calls_chain_and_are_recorded(harness: Harness) -> None:
    version = harness.js_version(
        "exports.onExecuteThing = async (event, api) => {\n"
        "  api.user.setAppMetadata('a', 1).user.setAppMetadata('b', event.n);\n"
        "};\n",
        entries=(Entry("onExecuteThing", {"user": ("set_app_metadata",)}),),
    )
    outcome = harness.invoke(version, {"event": {"n": 2}})
    assert outcome.ok, outcome
    assert outcome.calls == (
        ApiCall("user", "set_app_metadata", ("a", 1)),
        ApiCall("user", "set_app_metadata", ("b", 2)),
    ), outcome


@pytest.mark.parametrize("name", ["constructor", "hasOwnProperty", "__proto__", "x/../.."])
def test_require_finds_declared_packages_only(harness: Harness, name: str) -> None:
    outcome = harness.invoke(
        harness.js_version(f"module.exports = async () => require({name!r});"), {}
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert "is not a dependency of this hook version" in outcome.failure.message
