"""Every extensibility point, by id: the built-in ones, one module each, and those
this process declared from data (declared.py).

``POINTS`` is one plain dict for the whole process, so that whatever looks a
point up (the flows, the runner, the management API) finds a declared point
exactly as it finds a built-in one. Declared points are added once, at start,
before anything serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from authhooks.points import (
    credentials_exchange,
    password_exchange,
    post_change_password,
    post_login,
    post_user_registration,
    pre_user_registration,
    schedule,
)
from authhooks.points.contract import Point

BUILT_IN: MappingProxyType[str, Point[Any, Any]] = MappingProxyType(
    {
        point.id: point
        for point in (
            credentials_exchange.POINT,
            password_exchange.POINT,
            pre_user_registration.POINT,
            post_user_registration.POINT,
            post_change_password.POINT,
            post_login.POINT,
            schedule.POINT,
        )
    }
)

POINTS: dict[str, Point[Any, Any]] = dict(BUILT_IN)


class PointClash(ValueError):
    """A declared point would take the id of another point."""


def use_declared(points: Iterable[Point[Any, Any]]) -> None:
    """Make ``points`` this process's declared points, after the built-in ones; any
    declared before are dropped. PointClash, and nothing changes, when an id is a
    built-in point's or is given twice."""
    declared: dict[str, Point[Any, Any]] = {}
    for point in points:
        if point.id in BUILT_IN:
            raise PointClash(
                f"point {point.id!r} is built in: a declared point needs an id of its own"
            )
        if point.id in declared:
            raise PointClash(f"point {point.id!r} is declared twice")
        declared[point.id] = point
    # The new ones first, then the stale ones out: a reader in another thread sees
    # every point that stays, at every moment.
    POINTS.update(declared)
    for point_id in [key for key in POINTS if key not in BUILT_IN and key not in declared]:
        del POINTS[point_id]
