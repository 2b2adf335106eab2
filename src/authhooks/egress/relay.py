"""Copying an allowed connection's bytes both ways, under the call's caps.

The relay runs on plain non-blocking sockets, straight from the event loop's
readiness callbacks: a chunk costs one ``recv`` and one ``send``, with no
task, future or stream buffer in between. Asyncio streams cost a few tens of
microseconds of Python per chunk, and a TLS request crosses the relay on
every round trip of its handshake, so that was most of what the broker added
to an HTTPS request.

Each direction reads only while its other end keeps up: a side that does not
read stops the one feeding it (at most one chunk waits, per direction). The
end of a stream is passed on (``shutdown(SHUT_WR)``) once what came before it
is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol

CHUNK = 64 * 1024


class Tally(Protocol):
    """Where a relay counts its bytes: the call's totals, which all its
    connections share."""

    bytes_out: int
    bytes_in: int


class Cut(Exception):
    """The connection was closed early: a per-call cap ran out."""


class _Way:
    """One direction: ``source`` to ``sink``."""

    def __init__(
        self, source: socket.socket, sink: socket.socket, outbound: bool, cap: int, left: int | None
    ) -> None:
        self.source, self.sink = source, sink
        self.outbound = outbound  # hook -> remote
        self.cap = cap
        self.left = left  # bytes still to read from the source; None: until it ends
        self.pending = b""  # read, not yet written
        self.eof = False  # the source will send no more
        self.ended = False


class Relay:
    """Relays ``hook_side`` and ``remote`` until both directions have ended;
    ``done`` then resolves (or fails with ``Cut``). ``first`` is written to the
    remote before anything else; with ``outbound_limit``, only that many more
    bytes are read from the hook (a plain-HTTP request's body)."""

    def __init__(
        self,
        hook_side: socket.socket,
        remote: socket.socket,
        tally: Tally,
        caps: tuple[int, int],
        first: bytes = b"",
        outbound_limit: int | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.bytes_out = 0
        self.bytes_in = 0
        self._tally = tally
        self._ways = (
            _Way(hook_side, remote, True, caps[0], outbound_limit),
            _Way(remote, hook_side, False, caps[1], None),
        )
        up, down = self._ways
        up.eof = up.left == 0
        if first:
            if not self._count(up, first):
                return
            self._send(up, first)
        elif up.eof:
            self._end(up)
        if not (up.eof or up.pending or up.ended):
            self._loop.add_reader(up.source, self._read, up)
        self._loop.add_reader(down.source, self._read, down)

    def stop(self) -> None:
        """Stop watching both sockets (before they are closed)."""
        for way in self._ways:
            self._loop.remove_reader(way.source)
            self._loop.remove_writer(way.sink)

    def _read(self, way: _Way) -> None:
        try:
            data = way.source.recv(CHUNK if way.left is None else min(CHUNK, way.left))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset: as good as an end
            data = b""
        if not data:
            way.eof = True
            self._loop.remove_reader(way.source)
            self._end(way)
            return
        if not self._count(way, data):
            return
        if way.left is not None:
            way.left -= len(data)
            if not way.left:
                way.eof = True
                self._loop.remove_reader(way.source)
        self._send(way, data)

    def _send(self, way: _Way, data: bytes) -> None:
        try:
            sent = way.sink.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the other end is gone: this direction is over
            self._end(way, lost=True)
            return
        if sent < len(data):
            way.pending = data[sent:]
            self._loop.remove_reader(way.source)
            self._loop.add_writer(way.sink, self._write, way)
        elif way.eof:
            self._end(way)

    def _write(self, way: _Way) -> None:
        try:
            sent = way.sink.send(way.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._end(way, lost=True)
            return
        way.pending = way.pending[sent:]
        if way.pending:
            return
        self._loop.remove_writer(way.sink)
        if way.eof:
            self._end(way)
        else:
            self._loop.add_reader(way.source, self._read, way)

    def _count(self, way: _Way, data: bytes) -> bool:
        """Count ``data`` against the call's cap; False (and the relay cut) past it."""
        tally = self._tally
        used = (tally.bytes_out if way.outbound else tally.bytes_in) + len(data)
        if used > way.cap:
            which = "out" if way.outbound else "in"
            self._fail(Cut(f"closed: the call's {way.cap} bytes {which} were used up"))
            return False
        if way.outbound:
            tally.bytes_out = used
            self.bytes_out += len(data)
        else:
            tally.bytes_in = used
            self.bytes_in += len(data)
        return True

    def _end(self, way: _Way, *, lost: bool = False) -> None:
        """The direction is over: pass the end of stream on, unless there is nobody
        to pass it to; the relay is done when both are."""
        if way.ended:
            return
        way.ended = True
        self._loop.remove_reader(way.source)
        self._loop.remove_writer(way.sink)
        way.pending = b""
        if not lost:
            with contextlib.suppress(OSError):
                way.sink.shutdown(socket.SHUT_WR)
        if all(other.ended for other in self._ways) and not self.done.done():
            self.done.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.stop()
        for way in self._ways:
            way.ended = True
        if not self.done.done():
            self.done.set_exception(error)
