"""Shared pieces of the management API's request and response models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from authhooks.points.token import SCOPE_TOKEN_PATTERN


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# Read-only fields the server keeps up by itself: never compared.
_INFORMATIONAL = frozenset({"created_at", "updated_at", "version", "resolved"})


class Auth0Body(Body):
    """A body in Auth0's shape, as its SDKs and Deploy CLI send it: Auth0's own
    fields that mean nothing here (``auth0_fields``) are set aside, to be stored
    and answered back as sent; fields that a GET answers but no request sets
    (``read_only``) are set aside, to be compared with the stored ones (a GET
    sent back unchanged is fine, a change is a 400); ``refused`` fields get a 400
    saying why. Any other unknown field is still an error."""

    auth0_fields: ClassVar[frozenset[str]] = frozenset()
    read_only: ClassVar[frozenset[str]] = frozenset()
    refused: ClassVar[Mapping[str, str]] = {}

    no_effect: dict[str, Any] = Field(default_factory=dict, exclude=True)
    echoed: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _set_aside(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for own in ("no_effect", "echoed"):
            if own in data:
                raise ValueError(f"{own}: Extra inputs are not permitted")
        for name, why in cls.refused.items():
            if name in data:
                raise ValueError(f"{name}: {why}")
        rest = dict(data)
        rest["no_effect"] = {k: rest.pop(k) for k in list(rest) if k in cls.auth0_fields}
        rest["echoed"] = {k: rest.pop(k) for k in list(rest) if k in cls.read_only}
        return rest

    def refuse_read_only(self) -> None:
        """On create, a read-only field has nothing to equal: it is an error."""
        if self.echoed:
            raise ValueError(f"{', '.join(sorted(self.echoed))}: read-only")

    def changed_read_only(self, current: Mapping[str, Any]) -> list[str]:
        """The read-only fields that name the object (its id, its point, ...) sent with
        a value other than ``current``'s (JSON form). What the server keeps up by
        itself (timestamps, version numbers) and Auth0's fields it has no value for
        are only informational: tools send back what they read, perhaps an edit ago."""
        return sorted(
            name
            for name, value in self.echoed.items()
            if name in current and name not in _INFORMATIONAL and current[name] != value
        )


class Patch(Body):
    """A partial update: absent fields stay as they are; null only where ``nullable`` says."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # Auth0's fields of no effect, and read-only ones, are taken as sent.
            aside = getattr(cls, "auth0_fields", frozenset()) | getattr(
                cls, "read_only", frozenset()
            )
            nulls = [
                key
                for key, value in data.items()
                if value is None and key not in cls.nullable and key not in aside
            ]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null")
        return data


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _no_angle_brackets(value: str) -> str:
    # Said in words: a refusal reaches people through SDK errors, where a regular
    # expression tells them little.
    if "<" in value or ">" in value:
        raise ValueError("may not contain < or >")
    return value


# The pattern stays in the OpenAPI document; the check says what is wrong in words.
Name = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra={"pattern": r"^[^<>]+$"}),
    AfterValidator(_no_angle_brackets),
]
ScopeValue = Annotated[str, Field(max_length=280, pattern=SCOPE_TOKEN_PATTERN)]
