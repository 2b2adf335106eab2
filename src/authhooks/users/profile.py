"""A person's profile: Auth0's root attributes ``name``, ``nickname``,
``given_name``, ``family_name`` and ``picture``.

They are what applications show (the ID token's and userinfo's ``profile``
claims), never what identifies a user or grants anything, so whoever may create
or update a user may set them. ``name`` and ``nickname`` default as Auth0's do
(the address, and the part of it before the ``@``); ``picture`` has no default:
Auth0's Gravatar link would hand a hash of every address to a third party.
"""

from __future__ import annotations

from typing import Any, TypedDict
from urllib.parse import urlsplit

from authhooks.errors import InvalidInput
from authhooks.storage import models

# Auth0's limits for each field, in characters.
LIMITS = {"name": 300, "nickname": 300, "given_name": 150, "family_name": 150, "picture": 2048}
FIELDS = tuple(LIMITS)


def check(field: str, value: str) -> str:
    """The value as stored; InvalidInput naming the field when it cannot be."""
    if not value or len(value) > LIMITS[field]:
        raise InvalidInput(f"{field} must be 1 to {LIMITS[field]} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise InvalidInput(f"{field} may not contain control characters")
    if field == "picture":
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise InvalidInput("picture must be an http(s) URL")
    return value


def given(source: object) -> dict[str, str]:
    """The profile fields ``source`` (a request body, a stored user) has a value for."""
    return {field: value for field in FIELDS if (value := getattr(source, field, None)) is not None}


def check_all(profile: dict[str, Any]) -> dict[str, Any]:
    """Each field of a profile checked; None (a field cleared) passes as it is."""
    return {
        field: None if value is None else check(field, value) for field, value in profile.items()
    }


class Shown(TypedDict):
    name: str
    nickname: str
    given_name: str | None
    family_name: str | None
    picture: str | None


def shown(user: models.User) -> Shown:
    """The profile as the API, tokens and hooks show it, with Auth0's defaults."""
    return {
        "name": user.name or user.email,
        "nickname": user.nickname or user.email.split("@", 1)[0],
        "given_name": user.given_name,
        "family_name": user.family_name,
        "picture": user.picture,
    }
