"""/api/v2/points: the extensibility points, as the CLI and dashboard need them to
write hooks (each convention's signature and starter code, the ``api`` object's
methods, the event's schema and sample, the names an editor completes); the
points applications declare for themselves (created, changed and deleted here,
kept by hooks/point_specs.py); and invoking those (flows/invocations.py).

Built-in points are code, and a points file's are the operator's: neither
changes here. Invoking takes ``invoke:points`` (every declared point) or
``invoke:points:<id>`` (that one), and nothing else: an application that may
invoke cannot manage anything."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from authhooks.api.auth import Caller, authenticate, ensure_holds, require, services
from authhooks.api.errors import InsufficientScope, error_response
from authhooks.api.models import Body, Out
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import MAX_BODY_BYTES, StrictJSONRoute
from authhooks.errors import NotFound
from authhooks.flows.invocations import InvalidEvent
from authhooks.hooks import point_specs
from authhooks.hooks.lifecycle import js_name
from authhooks.hooks.point_specs import PointCatalog
from authhooks.identity import management
from authhooks.points.contract import Point
from authhooks.points.registry import BUILT_IN, POINTS
from authhooks.points.typescript import actions_declarations, hooks_declarations
from authhooks.services import Services

router = APIRouter(prefix="/points", tags=["points"], route_class=StrictJSONRoute)


class InexistentPoint(NotFound):
    code = "inexistent_point"


Source = Literal["server", "points_file", "api"]


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
    built_in: bool
    # Where the point comes from: the server's code, the operator's points file, or
    # an application through this API (the only ones that change here).
    source: Source
    conventions: dict[str, Convention]  # "hooks", "actions"
    event_schema: dict[str, Any]
    result_schema: dict[str, Any] | None = None
    sample_event: dict[str, Any]
    timeout_ms: int | None = None
    max_hooks: int | None = None
    # The Hooks convention's, as older clients read them.
    function: str
    params: list[str]
    template: str


def _out(point: Point[Any, Any], catalog: PointCatalog) -> PointOut:
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
        built_in=point.id in BUILT_IN,
        source=_source(point, catalog),
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
        result_schema=dict(point.result_schema) if point.result_schema is not None else None,
        sample_event=dict(point.sample_event),
        timeout_ms=point.timeout_ms,
        max_hooks=point.max_hooks,
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


def _source(point: Point[Any, Any], catalog: PointCatalog) -> Source:
    if point.id in BUILT_IN:
        return "server"
    return "points_file" if point.id in catalog.from_file else "api"


async def reader(request: Request) -> Caller:
    """Points are read to write hooks as well: ``read:hooks`` reads them too."""
    return await _one_of(request, "read:points", "read:hooks")


async def _one_of(request: Request, *scopes: str) -> Caller:
    caller = await authenticate(request)
    if not any(caller.holds(scope) for scope in scopes):
        raise InsufficientScope(scopes[0])
    return caller


async def _point(svc: Services, point_id: str, *, listed: bool = True) -> Point[Any, Any]:
    """The point, looked up again from the database once when this process does not
    know it: another process may have just declared it."""
    point = POINTS.get(point_id)
    if point is None:
        await svc.live.catch_up()
        point = POINTS.get(point_id)
    if point is None:
        known = "; one of: " + ", ".join(POINTS) if listed else ""
        raise InexistentPoint(f"no point named {point_id!r}{known}")
    return point


async def invoker(request: Request, point_id: str) -> Caller:
    """``invoke:points``, or the point's own ``invoke:points:<id>``."""
    caller = await authenticate(request)
    if not caller.holds(management.point_scope(point_id)):
        raise InsufficientScope(management.INVOKE_POINTS)
    return caller


class PointPatch(Body):
    """What may change: not the id (hooks are named after it), nor ``blocking``
    (its hooks' conventions and its callers' answers depend on it). Null removes
    an optional key."""

    description: Any = None
    event_schema: Any = None
    result_schema: Any = None
    sample_event: Any = None
    timeout_ms: Any = None
    max_hooks: Any = None


class PointIn(PointPatch):
    """A point to declare (points/declared.py checks it whole, saying what is wrong)."""

    id: Any = None
    blocking: Any = None


class CaptureMismatch(Out):
    invocation_id: str
    hook_id: str
    error: str


class ChangedPoint(PointOut):
    # Captured events of the point's hooks that the changed event schema refuses:
    # the runner's and replays' inputs a schema change left behind.
    mismatched_captures: list[CaptureMismatch]


class InvokeIn(Body):
    event: dict[str, Any]


@router.get("", response_model=list[PointOut] | dict[str, Any])
async def list_points(
    _: Annotated[Caller, Depends(reader)],
    page: Annotated[Pagination, Depends(pagination)],
    svc: Annotated[Services, Depends(services)],
) -> Any:
    shown = list(POINTS.values())[page.offset : page.offset + page.per_page]
    every = [_out(point, svc.points) for point in shown]
    return page.shape("points", every, len(POINTS))


@router.get("/{point_id}", response_model=PointOut)
async def get_point(
    point_id: str,
    _: Annotated[Caller, Depends(reader)],
    svc: Annotated[Services, Depends(services)],
) -> PointOut:
    return _out(await _point(svc, point_id), svc.points)


@router.post("", response_model=PointOut, status_code=201)
async def create_point(
    body: PointIn,
    _: Annotated[Caller, Depends(require("create:points"))],
    svc: Annotated[Services, Depends(services)],
) -> PointOut:
    spec = body.model_dump(exclude_unset=True)

    def write(session: Session) -> Point[Any, Any]:
        point = point_specs.create(session, svc.points, spec)
        management.add_point_scope(session, point.id)
        return point

    point = await svc.lifecycle.apply(write)
    svc.directory.invalidate()  # the management API's scopes changed
    await svc.live.reload()  # served by this process before the answer
    return _out(point, svc.points)


@router.patch("/{point_id}", response_model=ChangedPoint)
async def update_point(
    point_id: str,
    body: PointPatch,
    caller: Annotated[Caller, Depends(require("update:points"))],
    svc: Annotated[Services, Depends(services)],
) -> ChangedPoint:
    changes = body.model_dump(exclude_unset=True)

    def write(session: Session) -> Point[Any, Any]:
        point, _ = point_specs.update(session, svc.points, point_id, changes)
        return point

    point = await svc.lifecycle.apply(write)
    await svc.live.reload()

    def mismatches() -> list[point_specs.Mismatch]:
        with svc.database.session() as session:
            return point_specs.mismatched_captures(session, svc.master_key, point)

    found = await run_sync(mismatches) if "event_schema" in changes else []
    # An error quotes the captured event, which only readers of the logs may see.
    shown = caller.holds("read:logs")
    return ChangedPoint(
        **_out(point, svc.points).model_dump(),
        mismatched_captures=[
            CaptureMismatch(
                invocation_id=mismatch.invocation_id,
                hook_id=mismatch.hook_id,
                error=mismatch.error if shown else "(reading it needs read:logs)",
            )
            for mismatch in found
        ],
    )


@router.delete("/{point_id}", status_code=204)
async def delete_point(
    point_id: str,
    caller: Annotated[Caller, Depends(require("delete:points"))],
    svc: Annotated[Services, Depends(services)],
    force: Annotated[bool, Query()] = False,
) -> Response:
    if force:
        ensure_holds(caller, ["delete:hooks"], "delete a point with its hooks")

    def write(session: Session) -> None:
        point_specs.delete_point(session, svc.points, point_id, force=force)
        management.remove_point_scope(session, point_id)

    await svc.lifecycle.apply(write, deleted=force)
    svc.directory.invalidate()  # the point's scope is gone from the API and its grants
    await svc.live.reload()
    return Response(status_code=204)


@router.post("/{point_id}/invoke", responses={202: {}, 403: {}})
async def invoke_point(
    point_id: str,
    body: InvokeIn,
    request: Request,
    caller: Annotated[Caller, Depends(invoker)],
    svc: Annotated[Services, Depends(services)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Run a declared point's hooks for ``event``: a blocking point answers 200 with
    the result (or 403 with a hook's refusal), a non-blocking one 202 with the
    event's id, its hooks run from the durable queue."""
    point = await _point(svc, point_id, listed=False)  # an application sees only its own
    size = int(request.headers.get("content-length") or MAX_BODY_BYTES)
    try:
        answer, replayed = await svc.invoker.invoke(
            point, body.event, caller=caller.author, key=idempotency_key, size=size
        )
    except InvalidEvent as error:
        return error_response(400, str(error), error.code, details={"errors": error.errors})
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)
