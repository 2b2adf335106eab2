"""Auth0-style pagination query parameters: page (from 0), per_page, include_totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query


@dataclass(frozen=True)
class Pagination:
    page: int
    per_page: int
    include_totals: bool

    @property
    def offset(self) -> int:
        return self.page * self.per_page

    def shape(self, key: str, items: list[Any], total: int) -> Any:
        """A bare array, or Auth0's object with totals when ``include_totals`` is set."""
        if not self.include_totals:
            return items
        return {key: items, "start": self.offset, "limit": self.per_page, "total": total}


async def pagination(
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    include_totals: bool = False,
) -> Pagination:
    return Pagination(page, per_page, include_totals)
