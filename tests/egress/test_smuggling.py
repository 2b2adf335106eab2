"""A plain-HTTP request is forwarded only if the remote server can read its head in
exactly one way: a header line ended by a bare LF or CR, a folded line, a second
Host or Content-Length, or any Transfer-Encoding would let a hook slip a header or
a second request past the broker's rewrite. Each is refused with 400, and the
remote host never hears of it."""

from __future__ import annotations

import array
import asyncio
import contextlib
import socket
import threading
import time

import pytest

from authhooks.egress import rules
from authhooks.egress.broker import Broker
from tests.egress.loops import LOOPS, run_on

NAME = "smuggle.test.example"


class Upstream:
    """A remote host that records every connection's head and answers 200."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heads: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    data = connection.recv(65536)
                    if not data:
                        break
                    received += data
                self.heads.append(received)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        # Closing alone does not wake a thread blocked in accept() on Linux; shutting
        # the listener down does (accept fails), so the thread ends here.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self.listener.close()
        assert not self._thread.is_alive()


def _exchange(listening: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", listening), timeout=10) as client:
        client.sendall(request)
        answer = b""
        while data := client.recv(65536):
            answer += data
        return answer


def _scenario(loop: str, request: str) -> tuple[bytes, list[bytes], str]:
    """The broker's answer to ``request`` (``{target}`` stands for the allowed URL's
    authority), what the remote host received, and that authority."""
    upstream = Upstream()

    async def scenario() -> bytes:
        broker = Broker(overrides={NAME: ("127.0.0.1", upstream.port)})
        try:
            listener = socket.create_server(("127.0.0.1", 0))
            with broker.open(0) as door:
                rights = array.array("i", [listener.fileno()])
                door.sendmsg([b"L"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            listening = listener.getsockname()[1]
            listener.close()
            allowed = [rules.parse_rule(f"{NAME}:{upstream.port}")]
            broker.begin(0, "hk_test", allowed, time.monotonic() + 60)
            target = f"{NAME}:{upstream.port}"
            raw = request.replace("{target}", target).encode()
            answer = await asyncio.to_thread(_exchange, listening, raw)
            await broker.end(0)
            return answer
        finally:
            await broker.shutdown()

    try:
        return run_on(loop, scenario()), upstream.heads, f"{NAME}:{upstream.port}"
    finally:
        upstream.close()


SMUGGLED = {
    "a Host after a bare LF": (
        "GET http://{target}/ HTTP/1.1\r\nX-A: 1\nHost: admin.internal\r\n\r\n"
    ),
    "chunked after a bare LF": (
        "POST http://{target}/ HTTP/1.1\r\nContent-Length: 5\r\n"
        "X-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "keep-alive after a bare LF": (
        "GET http://{target}/ HTTP/1.1\r\nX-A: 1\nConnection: keep-alive\r\n\r\n"
    ),
    "a second Content-Length after a bare LF": (
        "POST http://{target}/ HTTP/1.1\r\nContent-Length: 0\r\n"
        "X-A: 1\nContent-Length: 38\r\n\r\nGET /admin HTTP/1.1\r\nHost: a.b\r\n\r\n"
    ),
    "a request after a bare LF blank line": (
        "GET http://{target}/ HTTP/1.1\r\nX-A: 1\n\nGET /admin HTTP/1.1\r\nHost: a.b\r\n\r\n"
    ),
    "a Host after a bare CR": (
        "GET http://{target}/ HTTP/1.1\r\nX-A: 1\rHost: admin.internal\r\n\r\n"
    ),
    "a bare LF in the request line": "GET http://{target}/\nx HTTP/1.1\r\n\r\n",
    "a folded line": "GET http://{target}/ HTTP/1.1\r\nX-A: 1\r\n Host: admin.internal\r\n\r\n",
    "space before the colon": (
        "POST http://{target}/ HTTP/1.1\r\nContent-Length : 38\r\n\r\n"
        "GET /admin HTTP/1.1\r\nHost: a.b\r\n\r\n"
    ),
    "a line without a colon": "GET http://{target}/ HTTP/1.1\r\nHost admin.internal\r\n\r\n",
    "a NUL in a value": "GET http://{target}/ HTTP/1.1\r\nX-A: 1\x00Host: a\r\n\r\n",
    "two Content-Lengths": (
        "POST http://{target}/ HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n"
        "GET /admin HTTP/1.1\r\nHost: a.b\r\n\r\n"
    ),
    "two Hosts": "GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nHost: admin.internal\r\n\r\n",
    "Host and HOST": (
        "GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nHOST: admin.internal\r\n\r\n"
    ),
    "Content-Length and content-length": (
        "POST http://{target}/ HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 38\r\n\r\n"
        "GET /admin HTTP/1.1\r\nHost: a.b\r\n\r\n"
    ),
    # A Cyrillic "т": a server that folds it to ASCII would read a second Host.
    "a non-ASCII byte in a header name": (
        "GET http://{target}/ HTTP/1.1\r\nHos\u0442: admin.internal\r\n\r\n"
    ),
    "Transfer-Encoding: chunked": (
        "POST http://{target}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding: identity": (
        "POST http://{target}/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n"
        "Content-Length: 2\r\n\r\nhi"
    ),
}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("request_text", SMUGGLED.values(), ids=SMUGGLED.keys())
def test_each_smuggling_variant_is_refused_and_reaches_nobody(loop: str, request_text: str) -> None:
    answer, heads, _ = _scenario(loop, request_text)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request: "), answer
    assert heads == []


@pytest.mark.parametrize("loop", LOOPS)
def test_a_well_formed_request_goes_through_with_one_host(loop: str) -> None:
    answer, heads, target = _scenario(
        loop,
        "POST http://{target}/hi HTTP/1.1\r\nHost: {target}\r\nX-A:\t1 \r\n"
        "Connection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
    )
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hi HTTP/1.1"
    assert [line for line in lines if line.lower().startswith("host:")] == [f"Host: {target}"]
    assert "Connection: close" in lines
    assert "Connection: keep-alive" not in lines
    assert "X-A:\t1 " in lines
