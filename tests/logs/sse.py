"""A Server-Sent Events reader for the tests: a real HTTP stream, parsed by the spec."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    id: str | None
    received_at: float


class Subscriber:
    """Reads ``url`` in a thread; ``next`` hands the events over as they arrive."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None, **params: str):
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue[Event] = queue.Queue()
        self.status: int | None = None
        self.comments = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.ended = threading.Event()  # the server closed the stream (or it broke)
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, headers, params), daemon=True)
        self._thread.start()
        assert self._connected.wait(10), "the stream did not open"

    def _read(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers, params=params) as response:
                self.status = response.status_code
                self._connected.set()
                kind, data, event_id = "message", [], None
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if data:
                            self.events.put(
                                Event(kind, json.loads("\n".join(data)), event_id, time.monotonic())
                            )
                        kind, data, event_id = "message", [], None
                    elif line.startswith(":"):
                        self.comments += 1
                    else:
                        field, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if field == "event":
                            kind = value
                        elif field == "data":
                            data.append(value)
                        elif field == "id":
                            event_id = value
        except httpx.HTTPError:
            pass
        finally:
            self._connected.set()
            self.ended.set()

    def next(self, kind: str | None = None, timeout: float = 15.0) -> Event:
        """The next event (of ``kind``), skipping others; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {kind or 'event'} within {timeout} s") from None
            if kind is None or event.kind == kind:
                return event

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(5)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
