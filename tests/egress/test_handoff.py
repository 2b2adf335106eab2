"""A worker hands the broker its loopback listener through its door, once: the door
shuts after the first message, and anything but one listening TCP socket is
closed and changes nothing."""

from __future__ import annotations

import array
import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from authhooks.egress.broker import Broker
from tests.egress.loops import LOOPS, run_on


def _hand(door: socket.socket, *descriptors: int) -> None:
    """Send ``descriptors`` through ``door`` as a worker does, then wait for the
    broker to shut the door (TimeoutError if it does not)."""
    with door:
        door.settimeout(5)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", descriptors))]
        door.sendmsg([b"L"], rights if descriptors else [])
        assert door.recv(1) == b""  # shut, with nothing said


def _listening() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def _ask(address: tuple[str, int]) -> str:
    """A proxy request to the listener at ``address``: the status line of the answer,
    or "" if nothing answers."""
    try:
        with socket.create_connection(address, timeout=0.5) as client:
            client.sendall(b"GET http://example.com/ HTTP/1.1\r\n\r\n")
            return client.recv(4096).decode().split("\r\n")[0]
    except (TimeoutError, ConnectionRefusedError):
        return ""


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


Sends = Callable[[], tuple[list[int], list[Any]]]


def _nothing() -> tuple[list[int], list[Any]]:
    return [], []


def _pipe() -> tuple[list[int], list[Any]]:
    reader, writer = os.pipe()
    return [reader], [reader, writer]


def _datagram() -> tuple[list[int], list[Any]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return [sock.fileno()], [sock]


def _unlistening() -> tuple[list[int], list[Any]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    return [sock.fileno()], [sock]


def _two_listeners() -> tuple[list[int], list[Any]]:
    first, second = _listening(), _listening()
    return [first.fileno(), second.fileno()], [first, second]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("sends", [_nothing, _pipe, _datagram, _unlistening, _two_listeners])
def test_anything_but_one_listener_is_dropped_and_the_door_shuts(loop: str, sends: Sends) -> None:
    async def scenario() -> None:
        broker = Broker()
        try:
            door = broker.open(0)
            before = _descriptors()
            descriptors, held = sends()
            await asyncio.to_thread(_hand, door, *descriptors)
            for thing in held:
                os.close(thing) if isinstance(thing, int) else thing.close()
            # Whatever the broker was sent is closed again, and so are both ends
            # of the door: the worker's (by _hand) and the broker's.
            assert _descriptors() == before - 2
            assert broker._doors[0].handoff is None
            assert broker._doors[0].listener is None
        finally:
            await broker.shutdown()

    run_on(loop, scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_listener_is_taken_and_served_and_nothing_more_gets_through(loop: str) -> None:
    async def scenario() -> None:
        broker = Broker()
        try:
            door = broker.open(0)
            spare = door.dup()  # as if hook code had kept a way to the door
            listener = _listening()
            address = listener.getsockname()
            await asyncio.to_thread(_hand, door, listener.fileno())
            listener.close()
            broker.begin(0, "hk_test", [], time.monotonic() + 30)
            answer = await asyncio.to_thread(_ask, address)
            assert answer.startswith("HTTP/1.1 403 Forbidden: ")
            assert "may not reach the network" in answer
            # The door is shut: a second handover finds nobody.
            with spare, pytest.raises(BrokenPipeError):
                spare.sendmsg(
                    [b"L"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0]))]
                )
            records = await broker.end(0)
            assert [record.allowed for record in records] == [False]
        finally:
            await broker.shutdown()
        # Closed with the broker: nobody accepts there any more.
        assert await asyncio.to_thread(_ask, address) == ""

    run_on(loop, scenario())


def _status(client: socket.socket) -> str:
    client.settimeout(5)
    with client:
        return client.recv(4096).decode().split(" ")[1]


@pytest.mark.parametrize("loop", LOOPS)
def test_the_connection_cap_counts_connections_in_the_order_they_came(loop: str) -> None:
    """Connections that wait to be accepted together, as they do while the server
    is busy, are numbered as they are accepted: those within the cap are served,
    only those past it refused."""

    async def scenario() -> list[str]:
        broker = Broker()
        try:
            door = broker.open(0)
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            address = listener.getsockname()
            await asyncio.to_thread(_hand, door, listener.fileno())
            listener.close()
            broker.begin(0, "hk_test", [], time.monotonic() + 30)
            first = [socket.create_connection(address) for _ in range(4)]
            await asyncio.sleep(0.2)  # accepted, each waiting for its request
            # Connected while the event loop is held: accepted in one wake-up.
            rest = [
                socket.create_connection(address)
                for _ in range(broker.limits.connections_per_call + 2 - len(first))
            ]
            for client in rest:
                client.sendall(b"GET http://example.com/ HTTP/1.1\r\n\r\n")
            statuses = await asyncio.to_thread(lambda: sorted(_status(c) for c in rest))
            for client in first:
                client.close()
            await broker.end(0)
            return statuses
        finally:
            await broker.shutdown()

    statuses = run_on(loop, scenario())
    assert statuses == ["403"] * 12 + ["429"] * 2  # no host is allowed; two past the cap
