"""Points declared from data: an id, a description, whether the point blocks its
caller, and JSON Schemas (Draft 2020-12) of its event and, for a blocking point,
of the result its hooks build. The operator declares them in a file
(``AUTHHOOKS_POINTS_FILE``); nothing here knows where a spec came from.

Their hooks follow the same two conventions as the built-in points':

- **Hooks**: ``def fraud_score(event, context)`` returns a dict, merged into
  the result; ``context`` holds ``secrets`` and ``result`` (the result so far);
  raising ``authhooks.hook.HookError`` refuses;
- **Actions**: ``def on_execute_fraud_score(event, api)`` reads ``event`` (with
  ``secrets`` and ``result`` added) and calls ``api.result.set(key, value)`` or
  ``api.access.deny(reason)``.

Events are checked against the event schema (BadEvent naming where), and the
result against the result schema after each hook's merge (BadOutput), so a hook
that breaks the point's promise fails, as it would at a built-in point. A
non-blocking point has no result: its hooks' return values are only logged.

A spec is checked whole when it is declared, so that a bad one stops the server
from starting rather than failing the first hook that runs: the schemas against
the metaschema, every ``$ref`` resolved within the schema (nothing is ever
fetched), the sample event against the event schema, and sizes bounded.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from authhooks.points.bounded_schema import (
    BoundedValidator,
    CostlySchema,
    check_costs,
    event_shape_error,
)
from authhooks.points.contract import (
    ActionsConvention,
    BadEvent,
    BadOutput,
    Command,
    Denial,
    Denied,
    HooksConvention,
    Output,
    Point,
    Preview,
    Refusal,
    Secrets,
    refuse_as_server_error,
)

# Lower-case words joined by '-', the first starting with a letter: its function
# names (``fraud_score``, ``on_execute_fraud_score``) are then Python names.
ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_ID_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 300
MAX_SPEC_BYTES = 64 * 1024  # one spec, as JSON: schemas are read by editors and forms
MAX_SCHEMA_DEPTH = 32  # validating recurses as deep as the schema nests
MAX_RESULT_BYTES = 16 * 1024  # as a token's custom claims or a user's metadata
MAX_POINTS = 100
MAX_MESSAGE = 300  # of a validation message, which may quote the whole value
MAX_ERRORS = 20  # listed for one event: enough to fix a caller, bounded work
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KEYS = (
    "id",
    "description",
    "blocking",
    "event_schema",
    "result_schema",
    "sample_event",
    "timeout_ms",
    "max_hooks",
)
REQUIRED = ("id", "description", "blocking", "event_schema")
# What the conventions add to the event: the hook's secrets and the result so far.
RESERVED_EVENT_KEYS = ("secrets", "result")
# What a queued delivery adds to the event of a non-blocking point, as it does at
# the built-in ones: the invocation's id, and which delivery attempt this is.
DELIVERY_KEYS = ("event_id", "delivery")
SAMPLE_DELIVERY = {"event_id": "evt_sample", "delivery": {"id": "dlv_sample", "attempt": 1}}
# A hook's own timeout is bounded so (hooks/limits.py); a point may bound it lower.
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 100, 20_000
MAX_HOOKS = 100
DENIAL_CODE = "access_denied"


class InvalidDeclaration(ValueError):
    """A point spec that cannot be declared; the message says which and why."""


@dataclass(frozen=True)
class DeclaredState:
    """A flow's state at a declared point: the result its hooks built so far."""

    result: Mapping[str, Any] = field(default_factory=dict)


DeclaredPoint = Point[dict[str, Any], DeclaredState]
Parse = Callable[[Any], dict[str, Any]]
Merge = Callable[[DeclaredState, Any], tuple[DeclaredState, list[str]]]


def declare(spec: Mapping[str, Any]) -> DeclaredPoint:
    """The point ``spec`` declares; InvalidDeclaration naming what is wrong."""
    return _declare(spec, _label(spec))


def declare_all(specs: Any) -> list[DeclaredPoint]:
    """The points of a list of specs (a points file's content), ids distinct."""
    if not isinstance(specs, list):
        raise InvalidDeclaration(f"expected a list of point specs, not {_json_type(specs)}")
    if len(specs) > MAX_POINTS:
        raise InvalidDeclaration(f"{len(specs)} points: at most {MAX_POINTS} may be declared")
    points: list[DeclaredPoint] = []
    for number, spec in enumerate(specs, start=1):
        label = f"#{number}" + (f" ({_label(spec)})" if _label(spec) != "spec" else "")
        point = _declare(spec, label)
        if any(other.id == point.id for other in points):
            raise InvalidDeclaration(f"point {label}: the id is declared twice")
        points.append(point)
    return points


def _label(spec: Any) -> str:
    """How an error names the spec: by its id when it has a valid one."""
    found = spec.get("id") if isinstance(spec, Mapping) else None
    try:
        return repr(_check_id(found))
    except InvalidDeclaration:
        return "spec"


def _declare(spec: Any, label: str) -> DeclaredPoint:
    try:
        return _build(spec)
    except InvalidDeclaration as error:
        raise InvalidDeclaration(f"point {label}: {error}") from None


def _build(spec: Any) -> DeclaredPoint:
    if not isinstance(spec, Mapping):
        raise InvalidDeclaration(f"a point spec is an object, not {_json_type(spec)}")
    unknown = [str(key) for key in spec if key not in KEYS]
    if unknown:
        raise InvalidDeclaration(
            f"unknown key {unknown[0]!r}; a spec has {', '.join(KEYS)} (the last two optional)"
        )
    if "id" not in spec:
        raise InvalidDeclaration("id is missing")
    point_id = _check_id(spec["id"])
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        raise InvalidDeclaration(f"{missing[0]} is missing")
    try:
        dumped = json.dumps(dict(spec), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidDeclaration("the spec is not plain JSON data") from None
    size = len(dumped.encode())
    if size > MAX_SPEC_BYTES:
        raise InvalidDeclaration(f"the spec is {size} bytes as JSON; at most {MAX_SPEC_BYTES}")
    spec = json.loads(dumped)  # the point's own copy, whatever the caller does with its own
    description = _check_description(spec["description"])
    blocking = spec["blocking"]
    if not isinstance(blocking, bool):
        raise InvalidDeclaration(f"blocking must be true or false, not {_json_type(blocking)}")
    events = _validator("event_schema", spec["event_schema"])
    properties = spec["event_schema"].get("properties")
    if isinstance(properties, Mapping):
        for key in RESERVED_EVENT_KEYS + (() if blocking else DELIVERY_KEYS):
            if key in properties:
                raise InvalidDeclaration(
                    f"event_schema may not declare the property {key!r}: hooks are given it "
                    "beside the event (secrets, the result so far, a delivery's id and attempt)"
                )
    results = None
    if spec.get("result_schema") is not None:
        if not blocking:
            raise InvalidDeclaration(
                "result_schema is for blocking points: a non-blocking point's caller "
                "does not wait for a result"
            )
        results = _validator("result_schema", spec["result_schema"])
    timeout_ms = _bounded(spec, "timeout_ms", MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)
    max_hooks = _bounded(spec, "max_hooks", 1, MAX_HOOKS)
    parse_event = _event_parser(events, blocking)
    if spec.get("sample_event") is not None:
        try:
            sample = parse_event(spec["sample_event"])
        except BadEvent as error:
            raise InvalidDeclaration(f"sample_event does not fit event_schema: {error}") from None
    else:
        sample = _sample(spec["event_schema"], parse_event)
    if not blocking:
        # As a delivery has them, so that hooks reading them run in the runner too.
        sample = {**SAMPLE_DELIVERY, **sample}
    point = _point(
        point_id, description, blocking, spec["event_schema"], sample, parse_event, results
    )
    return replace(
        point, timeout_ms=timeout_ms, max_hooks=max_hooks, result_schema=spec.get("result_schema")
    )


def _bounded(spec: Mapping[str, Any], key: str, least: int, most: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidDeclaration(f"{key} must be a whole number from {least} to {most}")
    return value


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value) or len(value) > MAX_ID_LENGTH:
        shown = repr(value)[:80] if isinstance(value, str) else _json_type(value)
        raise InvalidDeclaration(
            f"id must be lower-case words joined by '-', such as 'fraud-score', at most "
            f"{MAX_ID_LENGTH} characters; not {shown}"
        )
    if keyword.iskeyword(value):
        raise InvalidDeclaration(f"id {value!r} is a Python keyword: no function can be named so")
    return value


def _check_description(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidDeclaration("description must be a non-empty string")
    if len(value) > MAX_DESCRIPTION_LENGTH or not value.isprintable():
        # It is shown in lists and written into the starter code's comments: one line.
        raise InvalidDeclaration(
            f"description must be one line of at most {MAX_DESCRIPTION_LENGTH} printable characters"
        )
    return value.strip()


def _validator(name: str, schema: Any) -> Validator:
    """A validator of ``schema``, which must be a Draft 2020-12 schema of an object
    whose references all resolve within it."""
    if not isinstance(schema, Mapping):
        raise InvalidDeclaration(f"{name} must be a JSON Schema object, not {_json_type(schema)}")
    dialect = schema.get("$schema", SCHEMA_DIALECT)
    if dialect not in (SCHEMA_DIALECT, SCHEMA_DIALECT + "#"):
        raise InvalidDeclaration(f"{name}: $schema must be {SCHEMA_DIALECT} (or absent)")
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise InvalidDeclaration(f"{name} is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise InvalidDeclaration(
            f"{name} is not a valid JSON Schema: {_where(error)}{_message(error)}"
        ) from None
    if schema.get("type") != "object":
        raise InvalidDeclaration(f'{name} must describe an object: "type": "object"')
    try:
        check_costs(name, schema)
    except CostlySchema as error:
        raise InvalidDeclaration(str(error)) from None
    _check_references(name, DRAFT202012.create_resource(schema))
    # An empty registry: a reference is looked up within the schema, never fetched.
    validator: Validator = BoundedValidator(schema, registry=Registry())
    return validator


def _check_references(name: str, root: Resource[Any]) -> None:
    """Every ``$ref`` and ``$dynamicRef`` resolves, from where it is written (a
    subschema with an ``$id`` of its own is a base of its own)."""
    base = root.id() or ""
    resolver = Registry().with_resource(base, root).crawl().resolver(base_uri=base)
    pending = [(root, resolver)]
    while pending:
        resource, outer = pending.pop()
        here = outer.in_subresource(resource)
        contents = resource.contents
        if isinstance(contents, Mapping):
            for keyword_ in ("$ref", "$dynamicRef"):
                reference = contents.get(keyword_)
                if isinstance(reference, str):
                    try:
                        here.lookup(reference)
                    except Unresolvable:
                        raise InvalidDeclaration(
                            f"{name}: {keyword_} {reference[:200]!r} does not resolve within "
                            "the schema (nothing is fetched from elsewhere)"
                        ) from None
        pending += [(sub, here) for sub in resource.subresources()]


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            deepest = max(deepest, level)
            stack += [(child, level + 1) for child in item.values()]
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack += [(child, level + 1) for child in item]
    return deepest


def _event_parser(events: Validator, blocking: bool) -> Parse:
    def parse(value: Any) -> dict[str, Any]:
        """The event, if it fits the schema; BadEvent naming where it does not."""
        shape = event_shape_error(value)
        if shape is not None:
            pointer, problem = shape
            raise BadEvent(f"event at {pointer or '/'}: {problem}", [(pointer, problem)])
        added: dict[str, Any] = {}
        if not blocking and isinstance(value, Mapping):
            # A queued delivery's own keys are not the caller's event: checked apart.
            added = {key: value[key] for key in DELIVERY_KEYS if key in value}
            value = {key: item for key, item in value.items() if key not in added}
        errors = list(islice(events.iter_errors(value), MAX_ERRORS))
        if errors:
            first = best_match(errors)
            assert first is not None
            raise BadEvent(
                f"event{_at(first)}: {_message(first)}",
                [(_pointer(error), _message(error)) for error in errors],
            )
        # The schema may allow any key: these would be hidden by what hooks get beside it.
        for key in RESERVED_EVENT_KEYS:
            if key in value:
                raise BadEvent(
                    f"event at /{key}: {key!r} is given to hooks beside the event, "
                    "and cannot be part of it"
                )
        return {**value, **added}

    return parse


def _at(error: ValidationError | SchemaError) -> str:
    """`` at /a/0/b``: where in the value the error is, as an RFC 6901 JSON pointer."""
    return f" at {_pointer(error)}" if error.absolute_path else ""


def _pointer(error: ValidationError | SchemaError) -> str:
    """The RFC 6901 JSON pointer of where the error is: "" for the whole value."""
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
    )


def _where(error: ValidationError | SchemaError) -> str:
    """``at /properties/x/type: ``, the place in a schema that the metaschema refuses."""
    at = _at(error)
    return f"{at.strip()}: " if at else ""


def _message(error: ValidationError | SchemaError) -> str:
    message = error.message
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


# --- the sample event -----------------------------------------------------------------


def _sample(schema: Mapping[str, Any], parse_event: Parse) -> dict[str, Any]:
    """The smallest event the schema suggests: each property's ``const``, ``default``,
    first ``examples`` or ``enum`` value, else the least value of its type, for the
    required properties only. A schema that this does not satisfy (a pattern, a
    format, a condition) needs a sample_event of its own."""
    candidate = _minimal(schema, schema, 0)
    try:
        sample: dict[str, Any] = parse_event(candidate)
    except BadEvent as error:
        raise InvalidDeclaration(
            "sample_event is needed: the event made from event_schema's required "
            f"properties does not fit it ({error})"
        ) from None
    return sample


def _minimal(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > MAX_SCHEMA_DEPTH:
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        target: Any = root
        for part in reference[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, Mapping) else None
        return _minimal(target, root, depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _minimal(schema[key][0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind is None and ("properties" in schema or "required" in schema):
        kind = "object"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: _minimal(properties.get(name, {}), root, depth + 1)
            for name in schema.get("required", [])
            if isinstance(name, str)
        }
    if kind == "array":
        count = schema.get("minItems", 0)
        return [_minimal(schema.get("items", {}), root, depth + 1) for _ in range(min(count, 100))]
    if kind == "string":
        return "x" * min(schema.get("minLength", 0), 1000)
    if kind in ("integer", "number"):
        for bound in ("minimum", "maximum"):
            if isinstance(schema.get(bound), int | float):
                return schema[bound]
        return 0
    if kind == "boolean":
        return False
    return None


# --- the point ------------------------------------------------------------------------


def _point(
    point_id: str,
    description: str,
    blocking: bool,
    event_schema: Mapping[str, Any],
    sample: dict[str, Any],
    parse_event: Parse,
    results: Validator | None,
) -> DeclaredPoint:
    function = point_id.replace("-", "_")

    def arguments(event: dict[str, Any], state: DeclaredState, secrets: Secrets) -> dict[str, Any]:
        context: dict[str, Any] = {"secrets": dict(secrets)}
        if blocking:
            context["result"] = dict(state.result)
        return {"event": dict(event), "context": context}

    def actions_event(
        event: dict[str, Any], state: DeclaredState, secrets: Secrets
    ) -> dict[str, Any]:
        found = {**event, "secrets": dict(secrets)}
        if blocking:
            found["result"] = dict(state.result)
        return found

    merge: Merge
    if blocking:
        merge = _merger(results)
        api: Mapping[str, Mapping[str, Command]] = {
            "result": {"set": _set},
            "access": {"deny": _deny},
        }
        templates = _blocking_templates(function, description, _starter_result(results))
    else:
        merge = _logged
        api = {}  # nothing to change: the caller does not wait
        templates = _notification_templates(function, description)
    return Point(
        id=point_id,
        description=description,
        blocking=blocking,
        parse_event=parse_event,
        dump_event=dict,
        event_schema=event_schema,
        sample_event=sample,
        initial=lambda event: DeclaredState(),
        merge=merge,
        hooks=HooksConvention(function=function, params=("event", "context"), arguments=arguments),
        actions=ActionsConvention(
            function=f"on_execute_{function}", event=actions_event, api=api, aliases=("on_execute",)
        ),
        refuse=refuse if blocking else refuse_as_server_error,
        preview=preview if blocking else lambda event, state, output, server: {"returned": output},
        templates=templates,
    )


def _merger(results: Validator | None) -> Merge:
    def merge(state: DeclaredState, output: Any) -> tuple[DeclaredState, list[str]]:
        """The output's keys replace the result's; the whole must still fit result_schema."""
        if output is None:
            return state, []
        if not isinstance(output, dict):
            raise BadOutput(f"the hook must return a dict (or None), not {_json_type(output)}")
        result = {**state.result, **output}
        if len(json.dumps(result)) > MAX_RESULT_BYTES:
            raise BadOutput(f"the result exceeds {MAX_RESULT_BYTES} bytes")
        if results is not None:
            error = best_match(results.iter_errors(result))
            if error is not None:
                raise BadOutput(
                    f"the result does not fit result_schema: result{_at(error)}: {_message(error)}"
                )
        return DeclaredState(result), []

    return merge


def _logged(state: DeclaredState, output: Any) -> tuple[DeclaredState, list[str]]:
    """A non-blocking point's caller has gone: what a hook returns is only logged."""
    return state, [] if output is None else [f"returned {json.dumps(output)[:500]}"]


def _set(state: DeclaredState, output: Output, args: Sequence[Any]) -> None:
    """``api.result.set(key, value)``: as returning ``{key: value}``."""
    if len(args) != 2 or not isinstance(args[0], str):
        raise BadOutput("api.result.set takes (key, value)")
    output[args[0]] = args[1]


def _deny(state: DeclaredState, output: Output, args: Sequence[Any]) -> None:
    """``api.access.deny(reason)``: as raising ``HookError(reason)``."""
    if len(args) != 1 or not isinstance(args[0], str):
        raise BadOutput("api.access.deny takes (reason)")
    raise Denied(Denial(DENIAL_CODE, args[0], args[0]))


def refuse(hook: str, denial: Denial | None, failure: str) -> Refusal:
    """A deliberate refusal is ``access_denied`` with the hook's user message (else its
    message); any other failure a server_error naming the hook, never a traceback."""
    if denial is not None:
        description = denial.user_message or denial.message or f"refused by hook {hook!r}"
        return Refusal(DENIAL_CODE, description, denial)
    return refuse_as_server_error(hook, denial, failure)


def preview(
    event: dict[str, Any], state: DeclaredState, output: Any, server: Preview
) -> dict[str, Any]:
    """The result as the caller would get it: what every hook so far merged."""
    return {"result": dict(state.result)}


# --- starter code ----------------------------------------------------------------------


def _starter_result(results: Validator | None) -> dict[str, Any]:
    """A result the starter code may set: the least one result_schema accepts, or
    none when it names no required keys (or this cannot find one)."""
    if results is None or not isinstance(results.schema, Mapping):
        return {}
    candidate = _minimal(results.schema, results.schema, 0)
    if isinstance(candidate, dict) and results.is_valid(candidate):
        return candidate
    return {}


def _blocking_templates(
    function: str, description: str, result: Mapping[str, Any]
) -> dict[str, str]:
    returned = "{" + ", ".join(f"{key!r}: {value!r}" for key, value in result.items()) + "}"
    calls = "".join(f"    api.result.set({key!r}, {value!r})\n" for key, value in result.items())
    hooks = (
        f"def {function}(event, context):\n"
        f"    # {description}\n"
        "    # event:   the point's event (its schema: GET /api/v2/points)\n"
        '    # context: {"secrets": this hook\'s secrets,\n'
        '    #           "result": what earlier hooks of the flow set}\n'
        "    # Return a dict: its keys are set in the result. Raise\n"
        "    # authhooks.hook.HookError(reason) to refuse.\n"
        f"    return {returned}\n"
    )
    actions = (
        f"def on_execute_{function}(event, api):\n"
        f"    # {description}\n"
        '    # event: the point\'s event, with "secrets" (this hook\'s) and "result"\n'
        "    #        (what earlier hooks of the flow set)\n"
        "    # api:   api.result.set(key, value) sets a key of the result;\n"
        "    #        api.access.deny(reason) refuses\n" + (calls or "    pass\n")
    )
    return {"hooks": hooks, "actions": actions}


def _notification_templates(function: str, description: str) -> dict[str, str]:
    hooks = (
        f"def {function}(event, context):\n"
        f"    # {description}\n"
        "    # The caller does not wait: what this returns is only logged.\n"
        '    # context: {"secrets": this hook\'s secrets}\n'
        '    print("received", sorted(event))\n'
    )
    actions = (
        f"def on_execute_{function}(event, api):\n"
        f"    # {description}\n"
        '    # The caller does not wait. event["secrets"]: this hook\'s secrets.\n'
        '    print("received", sorted(key for key in event if key != "secrets"))\n'
    )
    return {"hooks": hooks, "actions": actions}
