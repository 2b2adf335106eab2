"""Load for the stress suite: many token requests at once, over loopback, with
every answer's status and latency kept."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)  # seconds, successful answers
    failures: Counter[str] = field(default_factory=Counter)  # "HTTP 503", "ReadTimeout", ...
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.failures.values())

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def percentile(self, share: float) -> float:
        """The latency below which ``share`` of the successful answers fall, in ms."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=1000)[round(share * 1000) - 1] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def hammer(
    url: str, form: dict[str, str], seconds: float, concurrency: int, expect: int = 200
) -> Figures:
    """POST ``form`` to ``url`` from ``concurrency`` clients for ``seconds``."""
    figures = Figures()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one_client() -> None:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    response = await client.post(url, data=form)
                except httpx.HTTPError as error:
                    figures.failures[type(error).__name__] += 1
                    continue
                if response.status_code == expect:
                    figures.latencies.append(time.perf_counter() - began)
                else:
                    figures.failures[f"HTTP {response.status_code}"] += 1

        started = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        figures.seconds = time.monotonic() - started
    return figures


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
