"""/api/v2/points: the extensibility points, as the CLI and dashboard need them to
write hooks: each convention's signature and starter code, the ``api`` object's
methods, the event's schema and sample, and the names an editor completes.
Read-only: points are code, or declared from data when the server starts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from authhooks.api.auth import Caller, require
from authhooks.api.models import Out
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import NotFound
from authhooks.hooks.lifecycle import js_name
from authhooks.points.contract import Point
from authhooks.points.registry import POINTS
from authhooks.points.typescript import actions_declarations, hooks_declarations

router = APIRouter(prefix="/points", tags=["points"], route_class=StrictJSONRoute)


class InexistentPoint(NotFound):
    code = "inexistent_point"


class Hint(Out):
    """A name an editor offers for completion, with what it is."""

    path: str  # "client.metadata", "event.secrets", "api.access.deny"
    type: str  # "object", "array", "string", "number", "boolean", "null", "function"


class JavaScript(Out):
    """The same convention in JavaScript, as Auth0 wrote it."""

    signature: str  # "module.exports = function (client, scope, audience, context, cb)"
    template: str
    api: dict[str, list[str]] | None = None  # camelCase: accessToken -> setCustomClaim
    hints: list[Hint]
    # TypeScript declarations of what the function receives (points/typescript.py):
    # for an editor's checking and completion, in a .d.ts beside the hook.
    declarations: str


class Convention(Out):
    function: str
    params: list[str]
    signature: str
    template: str
    api: dict[str, list[str]] | None = None  # Actions: namespace -> methods
    hints: list[Hint]
    javascript: JavaScript


class PointOut(Out):
    id: str
    name: str  # = id, as older clients read it
    description: str
    blocking: bool
    conventions: dict[str, Convention]  # "hooks", "actions"
    event_schema: dict[str, Any]
    sample_event: dict[str, Any]
    # The Hooks convention's, as older clients read them.
    function: str
    params: list[str]
    template: str


def _out(point: Point[Any, Any]) -> PointOut:
    event = point.sample()
    state = point.initial(event)
    secrets = {"API_KEY": "..."}
    hooks_args = point.hooks.arguments(event, state, secrets)
    actions = point.actions
    js_context = {**hooks_args}
    if isinstance(js_context.get("context"), dict):  # Auth0 Hooks read context.webtask.secrets
        js_context["context"] = {**js_context["context"], "webtask": {"secrets": secrets}}
    hooks = Convention(
        function=point.hooks.function,
        params=list(point.hooks.params),
        signature=point.hooks.signature,
        template=point.templates.get("hooks", ""),
        hints=_hints(hooks_args),
        javascript=JavaScript(
            signature=f"module.exports = function ({', '.join([*point.hooks.params, 'cb'])})",
            template=point.templates.get("hooks.js", ""),
            hints=[*_hints(js_context), Hint(path="cb", type="function")],
            declarations=hooks_declarations(list(point.hooks.params), js_context),
        ),
    )
    methods = {namespace: list(names) for namespace, names in actions.methods().items()}
    api_hints = [
        Hint(path=f"api.{namespace}.{method}", type="function")
        for namespace, names in methods.items()
        for method in names
    ]
    js_methods = {
        js_name(namespace): [js_name(method) for method in names]
        for namespace, names in methods.items()
    }
    js_api_hints = [
        Hint(path=f"api.{namespace}.{method}", type="function")
        for namespace, names in js_methods.items()
        for method in names
    ]
    actions_event = actions.event(event, state, secrets)
    return PointOut(
        id=point.id,
        name=point.id,
        description=point.description,
        blocking=point.blocking,
        conventions={
            "hooks": hooks,
            "actions": Convention(
                function=actions.function,
                params=["event", "api"],
                signature=actions.signature,
                template=point.templates.get("actions", ""),
                api=methods,
                hints=_hints({"event": actions_event}) + api_hints,
                javascript=JavaScript(
                    signature=f"exports.{js_name(actions.function)} = async (event, api)",
                    template=point.templates.get("actions.js", ""),
                    api=js_methods,
                    hints=_hints({"event": actions_event}) + js_api_hints,
                    declarations=actions_declarations(
                        js_name(actions.function), actions_event, js_methods
                    ),
                ),
            ),
        },
        event_schema=dict(point.event_schema),
        sample_event=dict(point.sample_event),
        function=hooks.function,
        params=hooks.params,
        template=hooks.template,
    )


def _hints(arguments: dict[str, Any]) -> list[Hint]:
    """Every key path of the sample arguments, with the JSON type found there:
    derived from what a hook really receives, so it cannot drift from it."""
    found: list[Hint] = []
    pending: list[tuple[str, Any]] = list(arguments.items())
    while pending:
        path, value = pending.pop(0)
        found.append(Hint(path=path, type=_json_type(value)))
        if isinstance(value, dict) and not path.endswith("secrets"):
            pending += [(f"{path}.{key}", item) for key, item in value.items()]
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@router.get("", response_model=list[PointOut] | dict[str, Any])
def list_points(
    _: Annotated[Caller, Depends(require("read:hooks"))],
    page: Annotated[Pagination, Depends(pagination)],
) -> Any:
    every = [_out(point) for point in POINTS.values()]
    return page.shape("points", every[page.offset : page.offset + page.per_page], len(every))


@router.get("/{point_id}", response_model=PointOut)
def get_point(point_id: str, _: Annotated[Caller, Depends(require("read:hooks"))]) -> PointOut:
    point = POINTS.get(point_id)
    if point is None:
        raise InexistentPoint(f"no point named {point_id!r}; one of: " + ", ".join(POINTS))
    return _out(point)
