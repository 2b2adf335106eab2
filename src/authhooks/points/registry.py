"""Every extensibility point, by name."""

from __future__ import annotations

from authhooks.points import (
    credentials_exchange,
    password_exchange,
    post_change_password,
    post_user_registration,
    pre_user_registration,
)
from authhooks.points.base import Point

POINTS: dict[str, Point] = {
    module.POINT.name: module.POINT
    for module in (
        credentials_exchange,
        password_exchange,
        pre_user_registration,
        post_user_registration,
        post_change_password,
    )
}
