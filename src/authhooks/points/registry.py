"""Every extensibility point, by id: the built-in ones, one module each."""

from __future__ import annotations

from typing import Any

from authhooks.points import (
    credentials_exchange,
    password_exchange,
    post_change_password,
    post_user_registration,
    pre_user_registration,
)
from authhooks.points.contract import Point

POINTS: dict[str, Point[Any, Any]] = {
    point.id: point
    for point in (
        credentials_exchange.POINT,
        password_exchange.POINT,
        pre_user_registration.POINT,
        post_user_registration.POINT,
        post_change_password.POINT,
    )
}
