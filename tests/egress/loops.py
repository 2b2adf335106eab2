"""The event loops the broker runs on: asyncio's own, and uvloop, which uvicorn
picks when it is installed (as it is with ``uvicorn[standard]``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]


def run_on(loop: str, coroutine: Coroutine[Any, Any, T]) -> T:
    if loop == "uvloop":
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)
