"""A worker hands the broker its loopback listener through its door, once: anything
else that comes through the door is dropped, closed, and changes nothing."""

from __future__ import annotations

import array
import asyncio
import os
import socket
import time
from pathlib import Path

from authhooks.egress.broker import Broker


def _hand(path: Path, *descriptors: int) -> bytes:
    """Send ``descriptors`` through the door as a worker does; what the broker
    answers (nothing: it closes its end once it has read the handover)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as door:
        door.settimeout(5)
        door.connect(str(path))
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", descriptors))]
        try:
            door.sendmsg([b"L"], rights if descriptors else [])
            return door.recv(1)
        except ConnectionError:  # closed unread, or before anything was sent
            return b""


def _listening() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def _ask(address: tuple[str, int]) -> str:
    """A proxy request to the listener at ``address``: the status line of the answer,
    or "" if nothing answers."""
    with socket.create_connection(address, timeout=0.5) as client:
        client.sendall(b"GET http://example.com/ HTTP/1.1\r\n\r\n")
        try:
            return client.recv(4096).decode().split("\r\n")[0]
        except TimeoutError:
            return ""


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_only_a_listening_socket_is_taken_and_the_door_then_shuts() -> None:
    async def scenario() -> None:
        broker = Broker()
        try:
            path = await broker.open(0, os.getuid())
            before = _descriptors()
            reader, writer = os.pipe()
            datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            first, second = _listening(), _listening()
            unlistening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            for sent in [
                (),
                (reader,),
                (datagram.fileno(),),
                (unlistening.fileno(),),
                (first.fileno(), second.fileno()),
            ]:
                assert await asyncio.to_thread(_hand, path, *sent) == b""
            for closing in (reader, writer):
                os.close(closing)
            for sock in (datagram, second, unlistening):
                sock.close()
            # Every descriptor the broker was sent, and every connection, is closed.
            assert _descriptors() == before + 1  # ``first``, still ours

            broker.begin(0, "hk_test", [], time.monotonic() + 30)
            address = first.getsockname()
            assert await asyncio.to_thread(_hand, path, first.fileno()) == b""
            first.close()
            answer = await asyncio.to_thread(_ask, address)
            assert answer.startswith("HTTP/1.1 403 Forbidden: ")
            assert "may not reach the network" in answer

            def knock() -> None:
                with socket.socket(socket.AF_UNIX) as late:
                    late.connect(str(path))

            try:
                await asyncio.to_thread(knock)
            except ConnectionRefusedError:
                pass
            else:
                raise AssertionError("the door still takes connections after the handover")
            records = await broker.end(0)
            assert [record.allowed for record in records] == [False]
        finally:
            await broker.shutdown()

    asyncio.run(scenario())


def test_a_handover_from_another_uid_is_refused() -> None:
    async def scenario() -> None:
        broker = Broker()
        try:
            path = await broker.open(0, os.getuid() + 12345)  # the worker's uid: not ours
            listener = _listening()
            address = listener.getsockname()
            before = _descriptors()
            assert await asyncio.to_thread(_hand, path, listener.fileno()) == b""
            assert _descriptors() == before
            listener.close()
            broker.begin(0, "hk_test", [], time.monotonic() + 30)
            # Nobody accepts on it: the broker never took it.
            try:
                answer = await asyncio.to_thread(_ask, address)
            except ConnectionRefusedError:
                answer = ""
            assert answer == ""
            assert await broker.end(0) == []
        finally:
            await broker.shutdown()

    asyncio.run(scenario())
