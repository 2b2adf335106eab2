"""JSON Schema validation whose cost is bounded, for schemas an administrator
declares and events any application sends.

Draft 2020-12 as the ``jsonschema`` library validates it, but for the three
places where one request could take the server's CPU for seconds or minutes:

- ``pattern`` runs on RE2 (linear time), never on a backtracking engine:
  ``^(a+)+$`` against a long string would take Python's ``re`` an exponential
  time, holding the interpreter the whole while. A pattern RE2 cannot run
  (backreferences, lookaround) is refused when the schema is declared.
- ``patternProperties`` is refused: the library matches it (and the
  ``additionalProperties`` beside it) with Python's ``re``. ``propertyNames``
  with a ``pattern`` says the same of keys, on RE2.
- ``uniqueItems`` compares items pairwise: it needs a ``maxItems`` of at most
  ``MAX_UNIQUE_ITEMS`` beside it.

And events are walked before they are validated: nested at most
``MAX_EVENT_DEPTH`` deep (a schema that refers to itself would otherwise
recurse as deep as the event), and with finite numbers only (JSON has no
infinity; a number too large for a float reads as one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import re2  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

MAX_UNIQUE_ITEMS = 256
MAX_EVENT_DEPTH = 32
MAX_PATTERN_LENGTH = 1000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is said in the answer, not on stderr


class CostlySchema(ValueError):
    """A schema whose validation could cost without bound; the message says where."""


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance[:80]!r} does not match {pattern!r}")


_CACHE: dict[str, Any] = {}


def _compiled(pattern: str) -> Any:
    found = _CACHE.get(pattern)
    if found is None:
        if len(_CACHE) > 10_000:
            _CACHE.clear()
        found = _CACHE[pattern] = re2.compile(pattern, _OPTIONS)
    return found


BoundedValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)


def check_costs(name: str, schema: Any) -> None:
    """CostlySchema naming the first place of ``schema`` whose validation could cost
    without bound (see the module's docstring)."""
    pending: list[tuple[Any, str]] = [(schema, "")]
    while pending:
        node, where = pending.pop()
        if isinstance(node, list):
            pending += [(item, f"{where}/{index}") for index, item in enumerate(node)]
            continue
        if not isinstance(node, Mapping):
            continue
        if "patternProperties" in node:
            raise CostlySchema(
                f"{name} at {where or '/'}: patternProperties is not supported; describe "
                'keys with "propertyNames": {"pattern": ...}'
            )
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            _check_pattern(name, where, pattern)
        if node.get("uniqueItems") is True:
            most = node.get("maxItems")
            if not isinstance(most, int) or isinstance(most, bool) or most > MAX_UNIQUE_ITEMS:
                raise CostlySchema(
                    f"{name} at {where or '/'}: uniqueItems needs a maxItems of at most "
                    f"{MAX_UNIQUE_ITEMS} beside it (items are compared pairwise)"
                )
        for key, child in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            pending.append((child, f"{where}/{escaped}"))


def _check_pattern(name: str, where: str, pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise CostlySchema(
            f"{name} at {where}: a pattern is at most {MAX_PATTERN_LENGTH} characters"
        )
    try:
        _compiled(pattern)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else ""
        raise CostlySchema(
            f"{name} at {where}: pattern {pattern[:80]!r} is outside the syntax patterns "
            f"run in (RE2: no backreferences or lookaround){': ' + reason if reason else ''}"
        ) from None


def event_shape_error(value: Any) -> tuple[str, str] | None:
    """(JSON pointer, what is wrong) of the first place nested too deep or holding a
    number that is not finite; None when the event has neither."""
    pending: list[tuple[Any, str, int]] = [(value, "", 1)]
    while pending:
        node, where, depth = pending.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where, "a number too large (JSON numbers are finite)"
        if isinstance(node, Mapping | list):
            if depth > MAX_EVENT_DEPTH:
                return where, f"nested deeper than {MAX_EVENT_DEPTH} levels"
            items = node.items() if isinstance(node, Mapping) else enumerate(node)
            for key, child in items:
                escaped = str(key).replace("~", "~0").replace("/", "~1")
                pending.append((child, f"{where}/{escaped}", depth + 1))
    return None
