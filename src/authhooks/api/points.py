"""/api/v2/points: the extensibility points, as the CLI and dashboard need them to
write hooks (signature, sample event, template). Read-only: points are code."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from authhooks.api.auth import Caller, require
from authhooks.api.errors import ApiError
from authhooks.api.models import Out
from authhooks.api.routing import StrictJSONRoute
from authhooks.points.base import Point
from authhooks.points.registry import POINTS

router = APIRouter(prefix="/points", tags=["points"], route_class=StrictJSONRoute)


class PointOut(Out):
    name: str
    description: str
    blocking: bool
    function: str  # what a hook defines: ``def <function>(<params>)``
    params: list[str]
    sample_event: dict[str, Any]
    template: str


def _out(point: Point) -> PointOut:
    return PointOut(
        name=point.name,
        description=point.description,
        blocking=point.blocking,
        function=point.entry,
        params=list(point.params),
        sample_event=dict(point.sample_event),
        template=point.template,
    )


@router.get("", response_model=list[PointOut])
def list_points(_: Annotated[Caller, Depends(require("read:hooks"))]) -> list[PointOut]:
    return [_out(point) for point in POINTS.values()]


@router.get("/{name}", response_model=PointOut)
def get_point(name: str, _: Annotated[Caller, Depends(require("read:hooks"))]) -> PointOut:
    point = POINTS.get(name)
    if point is None:
        raise ApiError(
            404, f"no point named {name!r}; one of: " + ", ".join(POINTS), "inexistent_point"
        )
    return _out(point)
