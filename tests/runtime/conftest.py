"""A real Runtime with real bwrap sandboxes, driven from an event loop in a
background thread so that tests stay plain functions."""

from __future__ import annotations

import asyncio
import itertools
import textwrap
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from authhooks.runtime.outcome import Outcome
from authhooks.runtime.supervisor import CodeVersion, Entry, Runtime, RuntimeSettings

T = TypeVar("T")
_versions = itertools.count(1)


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Harness:
    """A started Runtime plus helpers that build versions from indented source."""

    def __init__(self, loop: Loop, settings: RuntimeSettings) -> None:
        self.loop = loop
        self.runtime = Runtime(settings)
        loop.run(self.runtime.start())

    def version(self, source: str, entry: str = "hook") -> CodeVersion:
        return CodeVersion(f"test:{next(_versions)}", textwrap.dedent(source), entry)

    def js_version(
        self,
        source: str,
        entries: tuple[Entry, ...] = (Entry("module.exports"),),
        **fields: Any,
    ) -> CodeVersion:
        """A JavaScript version; by default in Auth0's Hooks convention, so that its
        function takes the call's arguments in order (then a callback)."""
        key = f"test:js:{next(_versions)}"
        return CodeVersion(key, textwrap.dedent(source), entries, "node", **fields)

    def run_js(self, source: str, args: dict[str, Any] | None = None, **options: Any) -> Outcome:
        """Invoke fresh JavaScript code once."""
        return self.invoke(self.js_version(source), args, **options)

    def healthy_js(self) -> None:
        """The runtime still serves a fresh, benign JavaScript hook."""
        outcome = self.run_js("module.exports = async () => 'fine';\n")
        assert outcome.result == "fine", outcome

    def invoke(
        self, version: CodeVersion, args: dict[str, Any] | None = None, **options: Any
    ) -> Outcome:
        return self.loop.run(self.runtime.invoke(version, args or {}, **options))

    def run(self, source: str, args: dict[str, Any] | None = None, **options: Any) -> Outcome:
        """Invoke fresh code once."""
        return self.invoke(self.version(source), args, **options)

    def healthy(self) -> None:
        """The runtime still serves a fresh, benign hook."""
        outcome = self.run("def hook():\n    return 'fine'\n")
        assert outcome.result == "fine", outcome

    def close(self) -> None:
        self.loop.run(self.runtime.close())


@pytest.fixture(scope="session")
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def harness(loop: Loop) -> Iterator[Harness]:
    running = Harness(loop, RuntimeSettings(default_timeout=2.0))
    yield running
    running.close()


@pytest.fixture
def make_harness(loop: Loop) -> Iterator[Any]:
    """A Runtime with particular settings, closed after the test."""
    made: list[Harness] = []

    def make(**settings: Any) -> Harness:
        made.append(Harness(loop, RuntimeSettings(**settings)))
        return made[-1]

    yield make
    for running in made:
        running.close()
