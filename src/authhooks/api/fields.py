"""Auth0's ``fields`` and ``include_fields`` query parameters: a comma-separated
list of fields to show (``include_fields=true``, the default) or to leave out.

As in Auth0, a name that is not a field of the resource selects nothing (a
script asking for a field authhooks lacks gets the others, not an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from authhooks.api.errors import InvalidQuery


@dataclass(frozen=True)
class FieldSelection:
    fields: frozenset[str] | None  # None: every field
    include: bool

    def shaped(self, answer: Any, items_key: str | None = None) -> Any:
        """``answer`` (a resource, a list of them, or Auth0's object with totals whose
        ``items_key`` holds them) with the selection applied; as it is when none."""
        if self.fields is None:
            return answer
        data = jsonable_encoder(answer)
        if isinstance(data, list):
            data = [self._select(item) for item in data]
        elif items_key is not None and isinstance(data.get(items_key), list):
            data[items_key] = [self._select(item) for item in data[items_key]]
        else:
            data = self._select(data)
        return JSONResponse(data)

    def _select(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self.fields is not None
        return {key: value for key, value in item.items() if (key in self.fields) == self.include}


async def field_selection(
    fields: Annotated[
        str | None,
        Query(max_length=2000, description="comma-separated fields to show (or to leave out)"),
    ] = None,
    include_fields: Annotated[
        bool, Query(description="whether `fields` are those shown (true) or left out (false)")
    ] = True,
) -> FieldSelection:
    if fields is None:
        return FieldSelection(None, include_fields)
    names = frozenset(name.strip() for name in fields.split(","))
    if "" in names:
        raise InvalidQuery("fields is a comma-separated list of field names, none empty")
    return FieldSelection(names, include_fields)
