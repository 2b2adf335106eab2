"""The egress broker: the only way from a sandbox to the network.

Each sandboxed worker gets a door: one end of a socket pair, inherited at
start, through which the worker, before it loads hook code, hands over a
socket listening on the sandbox's loopback (``runtime/proxy_listener.py``);
then the worker closes its end, and the broker its own. The broker accepts
the hook's connections on that listener itself, so bytes cross one relay,
the broker's, and nothing copies them inside the sandbox. Hook code never
holds a way to send the server anything but bytes on its own connections.
The broker knows the calling hook by the listener a connection came in on,
and knows what that hook may reach from the call the runtime is making
(``begin``/``end``), never from anything the hook sends. The hook speaks HTTP
proxy: ``CONNECT host:port`` (TLS then runs end to end between the hook and
the remote host) or a plain-HTTP request with an absolute URL. For every
connection the broker:

1. refuses it outside a call, past the call's connection cap, or past the
   hook's rate;
2. reads the request head under a size cap and a deadline (a slowloris
   inside the sandbox holds only its own connection, until its call ends),
   and refuses a head that a server could read otherwise than the broker
   does (``request_head.parse_head``);
3. checks the host against the hook's allowlist (``rules.matches``), after
   refusing IP addresses in any notation and local names (``rules``);
4. resolves the name itself and connects only to an address it checked
   (``rules.usable``) — so a name that resolves to a private address, or that
   changes its answer between a check and a connect, gets nowhere;
5. relays bytes both ways under per-call caps, and closes everything when
   the call ends.

The relay works on plain non-blocking sockets from the event loop's own
readiness callbacks (``relay.Relay``): no task, future or stream buffer per chunk.
Asyncio streams cost a few tens of microseconds per chunk and per hop, and a
TLS request crosses the relay on every round trip of its handshake.

Each connection becomes a record (host, port, address, bytes, duration,
allowed or refused and why) that the runtime adds to the invocation's log.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from authhooks.egress import rules
from authhooks.egress.relay import Cut, Relay
from authhooks.egress.request_head import Refusal, parse_head, refusal_answer
from authhooks.observability.metrics import EGRESS_REQUESTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EgressLimits:
    connections_per_call: int = 16
    bytes_out_per_call: int = 8 * 1024 * 1024  # hook -> remote
    bytes_in_per_call: int = 32 * 1024 * 1024  # remote -> hook
    connect_timeout: float = 5.0
    head_bytes: int = 16 * 1024  # the proxy request line and headers
    head_timeout: float = 5.0
    rate_per_second: float = 20.0  # new connections per hook, in this server process
    rate_burst: int = 40
    records_per_call: int = 50  # then one line says how many more there were
    open_per_hook: int = 32  # connections one hook holds at once, across its workers
    open_total: int = 512  # connections the broker holds at once (two descriptors each)


@dataclass(frozen=True)
class EgressRecord:
    """One outbound connection, as the invocation's log shows it."""

    method: str
    host: str
    port: int
    address: str | None
    allowed: bool
    reason: str | None
    bytes_out: int
    bytes_in: int
    duration_ms: float

    def describe(self) -> str:
        # repr-quoted where the hook chose the text: no forged lines, no control characters.
        target = f"{_quoted(self.method, 16)} {_quoted(self.host, 100)}:{self.port}"
        if not self.allowed:
            return f"egress {target}: refused: {self.reason}"
        outcome = f" ({self.reason})" if self.reason else ""
        return (
            f"egress {target} -> {self.address}: {self.bytes_out} bytes out, "
            f"{self.bytes_in} bytes in, {self.duration_ms:.0f} ms{outcome}"
        )


@dataclass
class _Call:
    hook_id: str
    rules: tuple[rules.Rule, ...]
    deadline: float
    record_cap: int
    connections: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    records: list[EgressRecord] = field(default_factory=list)
    unrecorded: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def record(self, record: EgressRecord) -> None:
        EGRESS_REQUESTS.labels("allowed" if record.allowed else "refused").inc()
        if len(self.records) < self.record_cap:
            self.records.append(record)
        else:
            self.unrecorded += 1

    def all_records(self) -> list[EgressRecord]:
        if not self.unrecorded:
            return list(self.records)
        more = EgressRecord(
            "", "", 0, None, False, f"{self.unrecorded} more connections, not listed", 0, 0, 0
        )
        return [*self.records, more]


@dataclass
class _Door:
    # The broker's end of the socket pair the worker inherits: the worker hands
    # its listener over through it, once, and it is closed as soon as anything
    # comes through.
    handoff: socket.socket | None
    # Listening on the sandbox's loopback: the hook's connections arrive here.
    listener: socket.socket | None = None
    call: _Call | None = None


# How often idle rate-limit buckets are forgotten.
_SWEEP_EVERY = 60.0
_FD_SIZE = array.array("i").itemsize
_NO_LINGER = struct.pack("ii", 0, 0)
_ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)  # a descriptor no sandbox inherits
# Connections taken per wake-up of a listener: the event loop has other work.
_ACCEPTS_PER_WAKEUP = 16
_HEAD_CHUNK = 16 * 1024


class _Bucket:
    """A token bucket: ``rate`` connections a second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Broker:
    def __init__(
        self,
        limits: EgressLimits | None = None,
        overrides: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        self.limits = limits or EgressLimits()
        # Test-only: names that lead to a fixed local address, past the address rules.
        self._overrides = dict(overrides or {})
        self._doors: dict[int, _Door] = {}
        self._loop: asyncio.AbstractEventLoop  # the server's, from the first door on
        self._buckets: dict[str, _Bucket] = {}
        self._swept_at = time.monotonic()
        self._open: dict[str, int] = {}  # connections held, by hook
        self._open_total = 0
        # The host's own addresses are as off-limits as loopback: the broker runs there.
        self._local = rules.local_addresses()

    def open(self, slot: int) -> socket.socket:
        """A new door for the worker in ``slot``: the end of a socket pair that the
        worker inherits, to hand its listener over through. The caller passes it
        to the worker, then closes it."""
        self.close(slot)
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        door = _Door(ours)
        self._doors[slot] = door
        self._loop.add_reader(ours, self._on_handoff, door)
        return theirs

    def close(self, slot: int) -> None:
        door = self._doors.pop(slot, None)
        if door is None:
            return
        self._cancel(door.call)
        # Unwatched before closed: a descriptor number is soon reused.
        for sock in (door.handoff, door.listener):
            if sock is not None:
                self._loop.remove_reader(sock)
                sock.close()
        door.handoff = door.listener = None

    async def shutdown(self) -> None:
        for slot in list(self._doors):
            self.close(slot)

    def begin(
        self, slot: int, hook_id: str, allowed: Sequence[rules.Rule], deadline: float
    ) -> None:
        """A call of ``hook_id`` starts on the worker in ``slot``, until ``deadline``
        (a ``time.monotonic`` instant)."""
        door = self._doors.get(slot)
        if door is not None:
            self._cancel(door.call)
            door.call = _Call(hook_id, tuple(allowed), deadline, self.limits.records_per_call)

    async def end(self, slot: int) -> list[EgressRecord]:
        """The call ended: close its connections, and return what it did."""
        door = self._doors.get(slot)
        if door is None or door.call is None:
            return []
        call, door.call = door.call, None
        tasks = list(call.tasks)
        if tasks:
            # A relay the hook just finished with is still closing: let it record
            # itself as done before whatever is left is cut.
            _, pending = await asyncio.wait(tasks, timeout=0.05)
            self._cancel(call)
            if pending:  # each records itself as it closes
                await asyncio.wait(pending, timeout=1.0)
        return call.all_records()

    @staticmethod
    def _cancel(call: _Call | None) -> None:
        if call is not None:
            for task in list(call.tasks):
                task.cancel()

    # --- the listener's handover ----------------------------------------------------

    def _on_handoff(self, door: _Door) -> None:
        """The worker's handover: one descriptor, which must be a listening TCP socket.
        The door shuts after the first message, whatever it carried."""
        sock = door.handoff
        assert sock is not None
        try:
            data, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(_FD_SIZE), _CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        self._loop.remove_reader(sock)
        sock.close()
        door.handoff = None
        listener = _listener(ancillary)
        if listener is None:
            if data:  # not merely a worker that died before it got this far
                log.warning("egress: a worker handed over no listening socket; no egress for it")
            return
        door.listener = listener
        self._loop.add_reader(listener, self._on_connection, door)

    # --- one connection -------------------------------------------------------------

    def _on_connection(self, door: _Door) -> None:
        assert door.listener is not None
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                sock, _ = door.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors: leave the rest queued a moment
                listener = door.listener
                self._loop.remove_reader(listener)
                self._loop.call_later(0.1, self._resume, door, listener)
                return
            self._admit(door, sock)

    def _resume(self, door: _Door, listener: socket.socket) -> None:
        if door.listener is listener:  # the door is still open
            self._loop.add_reader(listener, self._on_connection, door)

    def _admit(self, door: _Door, sock: socket.socket) -> None:
        call = door.call
        if call is None:
            sock.close()
            return
        call.connections += 1
        if call.connections > self.limits.connections_per_call + self.limits.records_per_call:
            # Far past the cap: answer without a task or a record, so a loop of
            # attempts costs the broker next to nothing.
            call.unrecorded += 1
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A listener's options pass to what it accepts; closing must never wait.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        # Its number now: accepted in one wake-up, several are counted before any is served.
        task = self._loop.create_task(self._serve(call, sock, call.connections))
        call.tasks.add(task)
        task.add_done_callback(lambda _: _forget(call, task, sock))

    async def _serve(self, call: _Call, sock: socket.socket, number: int) -> None:
        """Serve the call's ``number``-th connection."""
        hook = call.hook_id
        began = time.monotonic()
        method, host, port = "?", "?", 0
        address: str | None = None
        relay: Relay | None = None
        remote: socket.socket | None = None
        held = False
        try:
            if number > self.limits.connections_per_call:
                raise Refusal(
                    429, f"more than {self.limits.connections_per_call} connections in one call"
                )
            if self._open.get(hook, 0) >= self.limits.open_per_hook:
                raise Refusal(429, f"this hook holds {self.limits.open_per_hook} connections")
            if self._open_total >= self.limits.open_total:
                raise Refusal(503, "the egress broker is at its connection limit")
            self._open[hook] = self._open.get(hook, 0) + 1
            self._open_total += 1
            held = True
            if not self._bucket(hook).take():
                raise Refusal(429, "this hook opens connections faster than its rate limit")
            head, early = await self._read_head(sock, call)
            method, host, port, forward = parse_head(head)
            if host not in self._overrides:
                try:
                    host = rules.normalize_host(host)
                except rules.Refused as refused:
                    raise Refusal(403, str(refused)) from None
            if not rules.matches(host, call.rules, port):
                raise Refusal(
                    403,
                    f"{host}:{port} is not in this hook's egress allowlist"
                    if call.rules
                    else "this hook may not reach the network (its egress allowlist is empty)",
                )
            remote, address = await self._connect(host, port, call)
            caps = (self.limits.bytes_out_per_call, self.limits.bytes_in_per_call)
            if method == "CONNECT":
                try:
                    await self._loop.sock_sendall(sock, _ESTABLISHED)
                except OSError:  # the hook is gone already
                    gone = "the hook closed the connection before the tunnel opened"
                    record = EgressRecord(
                        method, host, port, address, True, gone, *_so_far(None, began)
                    )
                    call.record(record)
                    return
                relay = Relay(sock, remote, call, caps, early)
            else:
                # One request per connection: its body, then nothing more from the hook.
                body = early[: forward.body_bytes]
                left = forward.body_bytes - len(body)
                relay = Relay(sock, remote, call, caps, forward.head + body, left)
            note: str | None = None
            try:
                await relay.done
            except Cut as cut:
                note = str(cut)
            call.record(
                EgressRecord(method, host, port, address, True, note, *_so_far(relay, began))
            )
        except Refusal as refusal:
            call.record(
                EgressRecord(
                    method, host, port, address, False, refusal.reason, *_so_far(relay, began)
                )
            )
            with contextlib.suppress(OSError):
                await self._loop.sock_sendall(sock, refusal_answer(refusal))
        except asyncio.CancelledError:
            connected = address is not None
            note = "closed when the call ended" if connected else "the call ended first"
            call.record(
                EgressRecord(method, host, port, address, connected, note, *_so_far(relay, began))
            )
        except Exception:  # never let one connection take the broker down
            log.exception("egress: connection failed unexpectedly")
            note = "refused: the broker could not handle the request"
            call.record(
                EgressRecord(method, host, port, address, False, note, *_so_far(relay, began))
            )
        finally:
            if held:
                self._open[hook] -= 1
                self._open_total -= 1
                if not self._open[hook]:
                    del self._open[hook]
            if relay is not None:
                relay.stop()
            if remote is not None:
                remote.close()
            # ``sock`` is closed by ``_forget``, once this task is done.

    def _bucket(self, hook: str) -> _Bucket:
        now = time.monotonic()
        if now - self._swept_at > _SWEEP_EVERY:
            # A bucket left alone long enough to refill is the same as a new one:
            # forgetting it keeps the map to the hooks that are calling out now.
            refilled = self.limits.rate_burst / self.limits.rate_per_second
            self._buckets = {
                key: bucket for key, bucket in self._buckets.items() if now - bucket.at < refilled
            }
            self._swept_at = now
        return self._buckets.setdefault(
            hook, _Bucket(self.limits.rate_per_second, self.limits.rate_burst)
        )

    async def _read_head(self, sock: socket.socket, call: _Call) -> tuple[bytes, bytes]:
        """The request head, through its blank line, and whatever came after it."""
        cap = self.limits.head_bytes
        timeout = min(self.limits.head_timeout, max(call.deadline - time.monotonic(), 0))
        received = bytearray()
        end = -1
        if timeout <= 0:
            raise Refusal(408, "no full request head in time")
        try:
            async with asyncio.timeout(timeout):
                while end < 0 and len(received) < cap:
                    try:
                        data = await self._loop.sock_recv(sock, _HEAD_CHUNK)
                    except OSError:  # reset by the hook: as good as closed
                        data = b""
                    if not data:
                        raise Refusal(400, "the connection closed before a full request head")
                    received += data
                    # The blank line may straddle what came before and what just came.
                    end = received.find(b"\r\n\r\n", max(len(received) - len(data) - 3, 0))
        except TimeoutError:
            raise Refusal(408, "no full request head in time") from None
        if end < 0 or end + 4 > cap:
            raise Refusal(431, f"the request head exceeds {cap} bytes")
        return bytes(received[: end + 4]), bytes(received[end + 4 :])

    async def _connect(self, host: str, port: int, call: _Call) -> tuple[socket.socket, str]:
        override = self._overrides.get(host)
        if override is not None:
            candidates = [(override[0], override[1])]
        else:
            try:
                found = rules.usable(await rules.resolve(host, port))
            except rules.Refused as refused:
                raise Refusal(403, str(refused)) from None
            found = [address for address in found if address not in self._local]
            if not found:
                raise Refusal(403, f"{host} resolves to an address of this server")
            candidates = [(str(address), port) for address in found]
        timeout = min(self.limits.connect_timeout, max(call.deadline - time.monotonic(), 0))
        last_error = "no address"
        for address, to_port in candidates:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            remote = socket.socket(family, socket.SOCK_STREAM)
            try:
                remote.setblocking(False)
                # The very address that was checked: no second lookup between check and use.
                async with asyncio.timeout(timeout):
                    await self._loop.sock_connect(remote, (address, to_port))
                remote.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, TimeoutError) as error:
                remote.close()
                last_error = str(error) or type(error).__name__
                continue
            except BaseException:
                remote.close()
                raise
            return remote, address
        raise Refusal(502, f"could not connect to {host}:{port}: {last_error}")


def _listener(ancillary: list[tuple[int, int, bytes]]) -> socket.socket | None:
    """The one descriptor a handover carried, if it is a listening TCP socket on IPv4
    (the sandbox's loopback); every descriptor that came is closed otherwise."""
    descriptors = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            descriptors.frombytes(data[: len(data) - len(data) % _FD_SIZE])
    if len(descriptors) != 1:
        for fd in descriptors:
            os.close(fd)
        return None
    try:
        sock = socket.socket(fileno=descriptors[0])
    except OSError:  # not a socket
        os.close(descriptors[0])
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM or not listening:
            raise OSError("not a listening TCP socket")
        sock.setblocking(False)
    except OSError:
        sock.close()
        return None
    return sock


def egress_overrides(setting: str) -> dict[str, tuple[str, int]]:
    """``name=127.0.0.1:port,...`` (the test-only setting) as a mapping."""
    overrides: dict[str, tuple[str, int]] = {}
    for entry in filter(None, (part.strip() for part in setting.split(","))):
        name, _, target = entry.partition("=")
        address, _, port = target.rpartition(":")
        if not name or not address or not port.isdigit():
            raise ValueError(f"egress_test_overrides: {entry!r} is not name=address:port")
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"egress_test_overrides: {address} is not a loopback address")
        overrides[name.strip().lower()] = (address, int(port))
    if overrides:
        log.warning("egress test overrides are set (%s): never in production", ", ".join(overrides))
    return overrides


def _forget(call: _Call, task: asyncio.Task[None], sock: socket.socket) -> None:
    """A connection's task is over: close its socket here, so that it is closed
    also when the task was cancelled before it ever ran."""
    call.tasks.discard(task)
    sock.close()


def _so_far(relay: Relay | None, began: float) -> tuple[int, int, float]:
    if relay is None:
        return 0, 0, _ms(began)
    return relay.bytes_out, relay.bytes_in, _ms(began)


def _quoted(text: str, limit: int) -> str:
    """``text`` as the log shows what a hook chose: plain if tame, else repr-quoted."""
    text = text[:limit]
    return text if text.isascii() and text.isprintable() and " " not in text else repr(text)


def _ms(began: float) -> float:
    return (time.monotonic() - began) * 1000
