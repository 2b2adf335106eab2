"""Knowing when the server is told to stop, before it waits for open connections.

uvicorn stops on SIGTERM or SIGINT by closing its listeners and then waiting
for every open response to finish: a log stream never would. Its signal
handlers are chained here, so that long-lived responses hear the news at once
and end themselves; uvicorn's own handling goes on unchanged.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType


def on_stop_signal(callback: Callable[[], None]) -> None:
    """Call ``callback`` in the running event loop when SIGTERM or SIGINT arrives."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only (a server run in a thread, say)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue  # no Python handler to chain: the default stops the process anyway

        def handler(
            signum: int,
            frame: FrameType | None,
            previous: Callable[[int, FrameType | None], object] = previous,
        ) -> None:
            loop.call_soon_threadsafe(callback)
            previous(signum, frame)

        signal.signal(number, handler)
