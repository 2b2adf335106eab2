"""Shared pieces of the management API's request and response models."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from authhooks.points.token import SCOPE_TOKEN_PATTERN


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Patch(Body):
    """A partial update: absent fields stay as they are; null only where ``nullable`` says."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [
                key for key, value in data.items() if value is None and key not in cls.nullable
            ]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null")
        return data


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^<>]+$")]
ScopeValue = Annotated[str, Field(max_length=280, pattern=SCOPE_TOKEN_PATTERN)]
