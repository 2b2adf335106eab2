"""Inside the sandbox: the one way out.

The sandbox has its own network namespace with nothing but loopback. This
forwarder listens on that loopback and relays every connection, byte for
byte, to the egress broker's Unix socket, which the server bound into the
sandbox. The worker points the standard proxy variables (``HTTP_PROXY``,
``HTTPS_PROXY``) at it, so ordinary clients — ``urllib.request``,
``http.client`` through a proxy, ``httpx``, ``requests`` — work unchanged.
It adds no security of its own: everything is decided by the broker, which
knows the hook by the socket, never by what arrives through it.

One thread, non-blocking sockets and a selector: threads and descriptors are
scarce in a worker (see sandbox.Limits). Runs inside the sandbox; standard
library only.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

PORT = 3128
BROKER_SOCKET = "/run/egress.sock"
_CHUNK = 64 * 1024
_MAX_BUFFERED = 256 * 1024  # per direction: a side that does not read stops the other


class _Pipe:
    """One relayed connection: the hook's side and the broker's."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.peer = {client: upstream, upstream: client}
        self.pending = {client: bytearray(), upstream: bytearray()}  # bytes to write to it
        self.eof: set[socket.socket] = set()  # sides that will send no more


class Forwarder:
    def __init__(self, port: int = PORT, broker_socket: str = BROKER_SOCKET) -> None:
        self._broker = broker_socket
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._pipes: dict[socket.socket, _Pipe] = {}
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        threading.Thread(target=self._serve, name="egress-forwarder", daemon=True).start()

    def _serve(self) -> None:
        while True:
            for key, _ in self._selector.select():
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock is self._listener:
                        self._accept()
                    elif sock in self._pipes:
                        self._step(self._pipes[sock], sock)
                except OSError:  # out of descriptors, say: drop that connection, go on
                    if sock in self._pipes:
                        self._close(self._pipes[sock])

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:  # out of descriptors, or the client gave up
            return
        try:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:  # the worker is out of descriptors: refuse this one
            client.close()
            return
        try:
            upstream.connect(self._broker)
        except OSError:
            client.close()
            upstream.close()
            return
        pipe = _Pipe(client, upstream)
        for side in (client, upstream):
            side.setblocking(False)
            self._pipes[side] = pipe
            self._selector.register(side, selectors.EVENT_READ)

    def _step(self, pipe: _Pipe, sock: socket.socket) -> None:
        """Move what can move on ``sock``'s connection without blocking."""
        peer = pipe.peer[sock]
        if sock not in pipe.eof and len(pipe.pending[peer]) < _MAX_BUFFERED:
            try:
                data = sock.recv(_CHUNK)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                pipe.eof.add(sock)
            elif data:
                pipe.pending[peer] += data
        for side in (sock, peer):
            buffer = pipe.pending[side]
            if buffer:
                try:
                    sent = side.send(buffer)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    self._close(pipe)
                    return
                del buffer[:sent]
            source = pipe.peer[side]
            if source in pipe.eof and not buffer:
                with contextlib.suppress(OSError):
                    side.shutdown(socket.SHUT_WR)  # pass the end of stream along
        if len(pipe.eof) == 2 and not any(pipe.pending.values()):
            self._close(pipe)
            return
        for side in (sock, peer):
            events = 0
            if side not in pipe.eof and len(pipe.pending[pipe.peer[side]]) < _MAX_BUFFERED:
                events |= selectors.EVENT_READ
            if pipe.pending[side]:
                events |= selectors.EVENT_WRITE
            self._watch(side, events)

    def _watch(self, sock: socket.socket, events: int) -> None:
        """Wait for ``events`` on ``sock``; none: stop watching it (an ended side
        would otherwise be readable forever)."""
        try:
            self._selector.get_key(sock)
        except KeyError:
            if events:
                self._selector.register(sock, events)
            return
        if events:
            self._selector.modify(sock, events)
        else:
            self._selector.unregister(sock)

    def _close(self, pipe: _Pipe) -> None:
        for side in pipe.peer:
            self._pipes.pop(side, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(side)
            side.close()
