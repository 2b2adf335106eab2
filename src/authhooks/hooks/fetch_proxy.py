"""The only way out for a package manager installing a hook's dependencies: a
forward proxy on loopback, for one install, that lets through the index's exact
hosts and nothing else.

A package's own dependencies may name any URL, which npm or pip would fetch
from the server, inside its network. Their proxy-bypass lists (``NO_PROXY``)
match host suffixes, so they cannot say "this host only"; this proxy does:
``CONNECT host:port`` (HTTPS) and plain HTTP requests in absolute form are
passed on when ``(host, port)`` is allowed, and answered 403 otherwise, before
anything is connected.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import urlsplit

_MAX_HEAD = 16 * 1024
_TIMEOUT = 60.0
_CHUNK = 1 << 16


class FetchProxy:
    """``with FetchProxy(allowed) as url:`` a proxy at ``url`` while the block runs."""

    def __init__(self, allowed: Iterable[tuple[str, int]]) -> None:
        self.allowed = frozenset((host.lower(), port) for host, port in allowed)
        self.refused: list[str] = []  # "host:port" asked for and refused, for the message
        self._server: socketserver.ThreadingTCPServer | None = None
        # The server's own way out, when it has one (an operator's proxy): what is
        # allowed goes through it, as the server's other traffic does.
        self._upstream = {
            scheme: _proxy_address(
                os.environ.get(f"{scheme.upper()}_PROXY") or os.environ.get(f"{scheme}_proxy")
            )
            for scheme in ("http", "https")
        }

    def __enter__(self) -> str:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_TIMEOUT)
        try:
            head, rest = _read_head(client)
            method, target = _request_line(head)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                where = (host.strip("[]").lower(), int(port))
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    raise ValueError("not an absolute http URL")
                where = (url.hostname.lower(), url.port or 80)
        except (OSError, ValueError):
            _answer(client, 400, "a proxy request was expected")
            return
        if where not in self.allowed:
            self.refused.append(f"{where[0]}:{where[1]}")
            _answer(client, 403, "only the package index may be reached")
            return
        via = self._upstream["https" if method == "CONNECT" else "http"]
        try:
            upstream = socket.create_connection(via or where, timeout=_TIMEOUT)
        except OSError:
            _answer(client, 502, "the package index could not be reached")
            return
        with upstream:
            try:
                if method == "CONNECT" and via is not None:
                    _tunnel(upstream, where)
            except (OSError, ValueError):
                _answer(client, 502, "the server's proxy refused the package index")
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                if rest:  # what the client sent at once behind its CONNECT
                    upstream.sendall(rest)
            else:  # to the index in the path's form, or to the server's proxy as it came
                upstream.sendall(_forwarded(head, absolute=via is not None) + rest)
            _relay(client, upstream)


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        if not chunk or len(data) > _MAX_HEAD:
            raise ValueError("no request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _request_line(head: bytes) -> tuple[str, str]:
    method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
    return method.upper(), target


def _proxy_address(url: str | None) -> tuple[str, int] | None:
    if not url:
        return None
    where = urlsplit(url if "://" in url else f"http://{url}")
    return (where.hostname, where.port or 80) if where.hostname else None


def _tunnel(upstream: socket.socket, where: tuple[str, int]) -> None:
    """Open a tunnel to ``where`` through the server's own proxy."""
    target = f"{where[0]}:{where[1]}"
    upstream.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head, _ = _read_head(upstream)
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or status[1] != b"200":
        raise ValueError("the tunnel was refused")


def _forwarded(head: bytes, absolute: bool) -> bytes:
    """The request as it goes on: in the path's form to the index itself (or as it
    came, to the server's proxy), without proxy headers, and one request per
    connection (so no later request on it escapes the check)."""
    line, *fields = head.decode("latin-1").split("\r\n")
    method, target, version = line.split(" ", 2)
    url = urlsplit(target)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    if absolute:
        path = target
    kept = [
        field
        for field in fields
        if field.split(":", 1)[0].strip().lower()
        not in ("connection", "proxy-connection", "proxy-authorization", "keep-alive")
    ]
    return "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode(
        "latin-1"
    )


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Bytes both ways until either side is done."""

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    other.start()
    pump(client, upstream)
    other.join(_TIMEOUT)


def _answer(client: socket.socket, status: int, message: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = message.encode()
    with contextlib.suppress(OSError):
        client.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
