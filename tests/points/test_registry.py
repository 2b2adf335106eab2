"""Every point's scaffold loads and runs against its sample event in the real sandbox,
and its output passes the point's own rules."""

from __future__ import annotations

import pytest

from authhooks.points.base import BadOutput
from authhooks.points.registry import POINTS
from authhooks.points.token import TokenState, merge
from authhooks.runtime.supervisor import CodeVersion
from tests.runtime.conftest import Harness


def test_the_five_points_are_declared() -> None:
    assert set(POINTS) == {
        "credentials-exchange",
        "password-exchange",
        "pre-user-registration",
        "post-user-registration",
        "post-change-password",
    }
    assert [p.blocking for p in POINTS.values()] == [True, True, True, False, False]


@pytest.mark.parametrize("name", sorted(POINTS))
def test_scaffold_runs_on_the_sample_event(harness: Harness, name: str) -> None:
    point = POINTS[name]
    version = CodeVersion(f"scaffold:{name}", point.template, point.entry)
    state = point.initial(point.sample_event)
    args = point.arguments(point.sample_event, state, {"API_KEY": "k" * 8})
    assert list(args) == list(point.params)
    outcome = harness.invoke(version, args)
    assert outcome.ok, outcome
    point.merge(state, outcome.result)


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
