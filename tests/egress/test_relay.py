"""The broker's relay, on real sockets: large bodies both ways through a reader that
keeps up slowly, the end of a stream passed on in a tunnel, and the per-call byte
caps cutting a connection with the reason in its record."""

from __future__ import annotations

import array
import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from authhooks.egress import rules
from authhooks.egress.broker import Broker, EgressLimits, EgressRecord
from tests.egress.loops import LOOPS, run_on

NAME = "relay.test.example"


def _serve(handle: Callable[[socket.socket], None]) -> tuple[int, socket.socket]:
    """A local server that runs ``handle`` on each connection, in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], listener


def _head(connection: socket.socket) -> tuple[bytes, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        data = connection.recv(65536)
        if not data:
            raise ConnectionError("no head")
        received += data
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


def _http(connection: socket.socket) -> None:
    """GET /<n>: n bytes of body. POST: the SHA-256 of the body it was sent."""
    with connection:
        head, rest = _head(connection)
        request_line = head.split(b"\r\n")[0].decode()
        method, path, _ = request_line.split(" ")
        if method == "POST":
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(rest) < length:
                rest += connection.recv(65536)
            body = hashlib.sha256(rest).hexdigest().encode()
        else:
            body = bytes(range(256)) * (int(path.strip("/")) // 256)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )


def _echo(connection: socket.socket) -> None:
    """Everything it is sent, upper-cased, once the sender has finished."""
    with connection:
        received = b""
        while data := connection.recv(65536):
            received += data
        connection.sendall(received.upper())


@asynccontextmanager
async def _through(limits: EgressLimits, port: int) -> AsyncIterator[tuple[Broker, int]]:
    """A broker relaying for one call that may reach ``NAME``, which leads to
    ``port``; (the broker, the port of the listener it accepts on)."""
    broker = Broker(limits, overrides={NAME: ("127.0.0.1", port)})
    try:
        listener = socket.create_server(("127.0.0.1", 0))
        with broker.open(0) as door:
            rights = array.array("i", [listener.fileno()])
            door.sendmsg([b"L"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        listening = listener.getsockname()[1]
        listener.close()
        broker.begin(0, "hk_test", [rules.parse_rule(f"{NAME}:{port}")], time.monotonic() + 60)
        yield broker, listening
    finally:
        await broker.shutdown()


def _download(listening: int, port: int, size: int, pause: float) -> bytes:
    with socket.socket() as client:
        # A small window, so that the relay's writes to it soon have to wait.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.settimeout(10)
        client.connect(("127.0.0.1", listening))
        client.sendall(f"GET http://{NAME}:{port}/{size} HTTP/1.1\r\n\r\n".encode())
        received = bytearray()
        try:
            while data := client.recv(16384):
                received += data
                time.sleep(pause)  # a slow reader: the relay must hold back, not pile up
        except ConnectionResetError:  # cut
            pass
        return bytes(received)


@pytest.mark.parametrize("loop", LOOPS)
def test_large_bodies_cross_both_ways_intact(loop: str) -> None:
    async def scenario() -> None:
        port, server = _serve(_http)
        size = 16 * 1024 * 1024
        async with _through(EgressLimits(), port) as (broker, listening):
            downloaded = await asyncio.to_thread(_download, listening, port, size, 0.0002)
            head, _, body = downloaded.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert body == bytes(range(256)) * (size // 256)

            upload = os.urandom(3 * 1024 * 1024)

            def post() -> bytes:
                with socket.create_connection(("127.0.0.1", listening), timeout=10) as client:
                    # The head and the start of the body in one write, as clients do.
                    client.sendall(
                        f"POST http://{NAME}:{port}/ HTTP/1.1\r\n"
                        f"Content-Length: {len(upload)}\r\n\r\n".encode()
                        + upload
                    )
                    received = b""
                    while data := client.recv(65536):
                        received += data
                    return received

            answer = await asyncio.to_thread(post)
            assert answer.endswith(hashlib.sha256(upload).hexdigest().encode())
            records = await broker.end(0)
        server.close()
        assert [(r.allowed, r.reason) for r in records] == [(True, None), (True, None)]
        assert records[0].bytes_in == len(downloaded)
        assert records[1].bytes_out > len(upload)
        assert records[1].bytes_in == len(answer)

    run_on(loop, scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_tunnel_passes_the_end_of_each_stream_on(loop: str) -> None:
    async def scenario() -> None:
        port, server = _serve(_echo)
        async with _through(EgressLimits(), port) as (broker, listening):

            def tunnel() -> bytes:
                with socket.create_connection(("127.0.0.1", listening), timeout=10) as client:
                    client.sendall(f"CONNECT {NAME}:{port} HTTP/1.1\r\n\r\n".encode())
                    established = client.recv(4096)
                    assert established.startswith(b"HTTP/1.1 200 Connection established")
                    client.sendall(b"hello, ")
                    client.sendall(b"tunnel")
                    client.shutdown(socket.SHUT_WR)  # the echo answers once it sees the end
                    received = b""
                    while data := client.recv(4096):
                        received += data
                    return received

            assert await asyncio.to_thread(tunnel) == b"HELLO, TUNNEL"
            (record,) = await broker.end(0)
        server.close()
        assert (record.method, record.allowed, record.reason) == ("CONNECT", True, None)
        assert (record.bytes_out, record.bytes_in) == (13, 13)

    run_on(loop, scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_the_calls_byte_caps_cut_the_connection_with_the_reason(loop: str) -> None:
    async def scenario() -> list[EgressRecord]:
        port, server = _serve(_http)
        limits = EgressLimits(bytes_in_per_call=100_000, bytes_out_per_call=50_000)
        async with _through(limits, port) as (broker, listening):
            answer = await asyncio.to_thread(_download, listening, port, 1_000_000, 0)
            assert len(answer) <= 100_000

            def post() -> bytes:
                with socket.create_connection(("127.0.0.1", listening), timeout=10) as client:
                    client.sendall(
                        f"POST http://{NAME}:{port}/ HTTP/1.1\r\n"
                        "Content-Length: 200000\r\n\r\n".encode()
                    )
                    try:
                        for _ in range(20):
                            client.sendall(b"x" * 10_000)
                        return client.recv(4096)
                    except ConnectionError:  # cut: the broker closed the connection
                        return b""

            assert not (await asyncio.to_thread(post)).startswith(b"HTTP/1.1 200")
            records = await broker.end(0)
        server.close()
        return records

    records = run_on(loop, scenario())
    assert [r.reason for r in records] == [
        "closed: the call's 100000 bytes in were used up",
        "closed: the call's 50000 bytes out were used up",
    ]
    assert records[0].bytes_in <= 100_000
    assert records[1].bytes_out <= 50_000
