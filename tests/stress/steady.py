"""Steady token load on a thread of its own while a test acts as an operator:
every answer is kept, with its time, so a failure can be set against the action
that caused it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from tests.stress.load import Figures


@dataclass
class Steady(Figures):
    failed_at: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, why)
    # What each failed request sent: (sent, answered, form), monotonic seconds.
    failed_forms: list[tuple[float, float, dict[str, str]]] = field(default_factory=list)
    refused: int = 0  # connections refused: the balancer's cue to try another node
    slowest: float = 0.0  # seconds

    def fail(self, reason: str) -> None:
        self.failures[reason] += 1
        self.failed_at.append((time.monotonic(), reason))

    def describe(self) -> str:
        return (
            f"{self.requests} requests, {self.errors} failed, {self.refused} refused, "
            f"p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms, "
            f"max {self.slowest * 1000:.0f} ms"
        )


class SteadyLoad:
    """``concurrency`` clients asking ``urls`` for tokens, round robin, until the
    ``with`` block ends. ``form`` is read before each request, so a test can switch
    credentials mid-run. A refused connection is tried on the next URL, as a load
    balancer does with a node that is down; with one URL it is counted as refused
    and tried again shortly. Everything else that is not a 200 is a failure."""

    def __init__(
        self,
        urls: Sequence[str],
        form: Callable[[], dict[str, str]],
        concurrency: int = 8,
    ) -> None:
        self.figures = Steady()
        self._urls = [url + "/oauth/token" for url in urls]
        self._form = form
        self._concurrency = concurrency
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(60)

    def since(self, began: float) -> Counter[str]:
        """The failures after ``began`` (monotonic)."""
        return Counter(reason for at, reason in self.figures.failed_at if at >= began)

    async def _run(self) -> None:
        started = time.monotonic()
        limits = httpx.Limits(
            max_connections=self._concurrency * len(self._urls),
            max_keepalive_connections=self._concurrency * len(self._urls),
        )
        # A hook may take its whole timeout on a busy machine; no client gives up first.
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await asyncio.gather(*(self._client(client, n) for n in range(self._concurrency)))
        self.figures.seconds = time.monotonic() - started

    async def _client(self, client: httpx.AsyncClient, number: int) -> None:
        figures = self.figures
        urls = itertools.cycle(self._urls[number % len(self._urls) :] + self._urls)
        while not self._stop.is_set():
            url = next(urls)
            began = time.perf_counter()
            sent, form = time.monotonic(), self._form()
            try:
                response = await client.post(url, data=form)
            except httpx.ConnectError:
                figures.refused += 1
                if len(self._urls) == 1:
                    await asyncio.sleep(0.05)
                continue
            except httpx.HTTPError as error:
                figures.fail(type(error).__name__)
                continue
            took = time.perf_counter() - began
            if response.status_code == 200:
                figures.latencies.append(took)
                figures.slowest = max(figures.slowest, took)
            else:
                figures.fail(f"HTTP {response.status_code} {response.text[:120]}")
                figures.failed_forms.append((sent, time.monotonic(), form))


def tree(pid: int) -> dict[int, str]:
    """``pid`` and every process under it: pid -> command name."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            name = Path(f"/proc/{current}/comm").read_text().strip()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[current] = name
    return found


def sandboxes(pid: int) -> set[int]:
    """The bwrap processes under ``pid``: one per sandbox worker."""
    return {child for child, name in tree(pid).items() if name == "bwrap"}


def resident(pid: int) -> int:
    """Resident bytes of ``pid`` and everything under it."""
    total = 0
    for child in tree(pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state != "Z":
            running.add(pid)
    return running


def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()
