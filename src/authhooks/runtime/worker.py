"""The worker: runs inside the sandbox and serves calls of one hook version
(``worker_handle.py`` is the server's side of it).

Start-up: read the ``load`` frame, set resource limits, install the seccomp
filter, close every inherited descriptor it does not need, hand a listener on
the sandbox's loopback to the egress broker (``proxy_listener.py``), compile
the hook's source and find the first of the entry functions it is offered
that the code defines; answer ``ready``, naming it, or ``load_error``. Then,
for each ``invoke`` frame, call that function and answer ``result`` or
``error``, streaming console lines as ``log`` frames while it runs. An entry
with an ``api`` (Auth0's Actions convention) is also passed an object that
records the calls made on it; they go back with the result.

File descriptors: 0 carries frames in, ``out_fd`` carries frames out, and
1 and 2 (raw output of C code or a crashing interpreter) go to a separate
pipe, so nothing a hook prints can corrupt the protocol.
Standard library only.
"""

from __future__ import annotations

import contextlib
import inspect
import linecache
import logging
import os
import resource
import sys
import traceback
from types import ModuleType
from typing import Any

from authhooks.hook import HookError
from authhooks.runtime import seccomp
from authhooks.runtime.protocol import (
    HEADER,
    MAX_TEXT,
    MAX_TRACEBACK_LINES,
    REDACTION_ROOM,
    ProtocolError,
    decode,
    encode,
    log_message,
)

FILENAME = "hook.py"


class Channel:
    def __init__(self, out_fd: int) -> None:
        self._out = out_fd
        self._buffer = bytearray()

    def receive(self) -> dict[str, Any] | None:
        header = self._read(HEADER.size)
        if header is None:
            return None
        (length,) = HEADER.unpack(header)
        body = self._read(length)
        if body is None:
            return None
        return decode(body)

    def _read(self, size: int) -> bytes | None:
        # One read usually brings a whole frame: header and body in one system call.
        while len(self._buffer) < size:
            chunk = os.read(0, max(1 << 16, size - len(self._buffer)))
            if not chunk:
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def send(self, message: dict[str, Any]) -> None:
        frame = encode(message)
        view = memoryview(frame)
        while view:
            view = view[os.write(self._out, view) :]


class Console:
    """Stands in for sys.stdout / sys.stderr: each complete line becomes a ``log`` frame."""

    def __init__(self, channel: Channel, stream: str, limits: dict[str, int]) -> None:
        self._channel = channel
        self._stream = stream
        self._limits = limits
        self._partial = ""
        self.call_id: int | None = None
        self.lines = 0
        self.dropped = 0
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self._emit(line)
        # An endless line is cut here: memory stays bounded and it ends up as one line.
        self._partial = self._partial[: self._limits["line_chars"]]
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def isatty(self) -> bool:
        return False

    def _emit(self, line: str) -> None:
        if self.call_id is None:
            return  # printed outside any call (a background thread): nobody asked for it
        if self.lines >= self._limits["lines"]:
            self.dropped += 1  # counted, not sent: printing gigabytes costs no syscalls
            return
        self.lines += 1
        line = line[: self._limits["line_chars"] + REDACTION_ROOM]
        self._channel.send(log_message(self.call_id, self._stream, line))


def limit_resources(limits: dict[str, int]) -> None:
    """Hard limits equal to soft ones, so hook code can only lower them."""
    for name, value in (
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_CPU", limits["cpu_seconds"]),
        ("RLIMIT_FSIZE", limits["file_bytes"]),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_MEMLOCK", 0),
        # No way back to a higher priority, nor to a real-time policy, whatever
        # limits the server was started with.
        ("RLIMIT_NICE", 0),
        ("RLIMIT_RTPRIO", 0),
        ("RLIMIT_RTTIME", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    # Yield the CPU to the server; without CAP_SYS_NICE, hook code cannot undo it.
    os.nice(limits["nice"])


def close_other_descriptors(keep: set[int]) -> None:
    """Close every descriptor but ``keep``: none may point outside the sandbox."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, already gone
                os.close(fd)


class Api:
    """The ``api`` object of an entry that has one (Auth0's Actions convention): each
    method call is recorded, in order, and sent back with the result for the
    server to apply. Nothing here acts; hook code sees plain objects."""

    def __init__(self, spec: dict[str, list[str]]) -> None:
        self._calls: list[list[Any]] = []
        for namespace, methods in spec.items():
            setattr(self, namespace, _Namespace(namespace, methods, self._calls))

    def calls(self) -> list[list[Any]]:
        return self._calls


class _Namespace:
    def __init__(self, name: str, methods: list[str], calls: list[list[Any]]) -> None:
        for method in methods:
            setattr(self, method, _recorder(name, method, calls))

    def __repr__(self) -> str:
        return f"<api: {', '.join(sorted(vars(self)))}>"


def _recorder(namespace: str, method: str, calls: list[list[Any]]) -> Any:
    def record(*args: Any) -> None:
        calls.append([namespace, method, list(args)])

    record.__name__ = record.__qualname__ = method
    return record


def load(source: str, entries: list[dict[str, Any]]) -> tuple[Any, bool, dict[str, Any]]:
    """(the first entry function the code defines, whether it is async, that entry);
    raises SyntaxError or LookupError."""
    # Tracebacks and inspect quote lines of hook.py from here.
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    code = compile(source, FILENAME, "exec", dont_inherit=True)
    module = ModuleType("hook")
    module.__file__ = FILENAME
    sys.modules["hook"] = module
    exec(code, module.__dict__)  # noqa: S102 - running the hook's code is this process's job
    for entry in entries:
        function = module.__dict__.get(entry["function"])
        if callable(function):
            return function, inspect.iscoroutinefunction(function), entry
    names = " or ".join(repr(entry["function"]) for entry in entries)
    found = [
        f"{entry['function']!r} is a {type(module.__dict__[entry['function']]).__name__}"
        for entry in entries
        if entry["function"] in module.__dict__
    ]
    raise LookupError(
        f"the hook must define a function named {names}; "
        + (
            "; ".join(found)
            if found
            else "it defines none of them"
            if len(entries) > 2
            else "it defines neither"
            if len(entries) > 1
            else "it is not defined"
        )
    )


def hook_traceback(error: BaseException) -> list[str]:
    """Traceback lines inside the hook's own code only: no worker or server paths."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == FILENAME
    ]
    return traceback.format_list(frames)


def describe(error: BaseException) -> dict[str, Any]:
    """The error as the server records it; cut where the server cuts (after
    redacting), so that the answer stays within the result's size limit."""
    is_hook_error = isinstance(error, HookError)
    user_message = error.user_message if is_hook_error else None  # type: ignore[attr-defined]
    code = getattr(type(error), "code", None) if is_hook_error else None
    return {
        "type": _cut(type(error).__name__),
        "code": code if isinstance(code, str) else None,
        "message": _cut(str(error.message if is_hook_error else error)),  # type: ignore[attr-defined]
        "user_message": _cut(user_message) if isinstance(user_message, str) else user_message,
        "hook_error": is_hook_error,
        "traceback": [_cut(line) for line in hook_traceback(error)[:MAX_TRACEBACK_LINES]],
    }


def _cut(text: str) -> str:
    return text[: MAX_TEXT + REDACTION_ROOM]


def serve(
    channel: Channel,
    function: Any,
    is_async: bool,
    api: dict[str, list[str]] | None,
    consoles: list[Console],
    limits: dict[str, int],
) -> None:
    loop = None
    if is_async:
        import asyncio

        loop = asyncio.new_event_loop()
    while True:
        message = channel.receive()
        if message is None:
            return  # the supervisor closed the pipe: retire quietly
        call_id = message.get("id")
        for console in consoles:
            console.call_id, console.lines, console.dropped = call_id, 0, 0
        try:
            args = message.get("args") or {}
            recorder = Api(api) if api is not None else None
            if recorder is not None:
                args["api"] = recorder
            value = function(**args)
            if loop is not None:
                value = loop.run_until_complete(value)
            reply: dict[str, Any] = {"op": "result", "id": call_id, "value": value}
            if recorder is not None:
                reply["calls"] = recorder.calls()
        except MemoryError:
            reply = {"op": "error", "id": call_id, "kind": "out_of_memory"}
        except BaseException as error:
            reply = {"op": "error", "id": call_id, "kind": "raised", "error": describe(error)}
        finally:
            for console in consoles:
                console.flush()
                console.call_id = None
        reply["dropped_lines"] = sum(console.dropped for console in consoles)
        try:
            frame = encode(reply)
            # The server refuses any larger answer, and the worker with it.
            limit = limits["result_bytes"]
            if len(frame) > limit:
                raise ProtocolError(
                    f"the {reply['op']} is {len(frame)} bytes; the limit is {limit}"
                )
        except (TypeError, ValueError, ProtocolError, RecursionError) as error:
            reply = {
                "op": "error",
                "id": call_id,
                "kind": "bad_result",
                "message": f"the hook returned what cannot be sent back: {error}",
            }
        except MemoryError:
            reply = {"op": "error", "id": call_id, "kind": "out_of_memory"}
        channel.send(reply)


def open_egress(door: int) -> None:
    """Give the egress broker a listener on the sandbox's loopback through ``door``,
    and point the standard proxy variables at it, so that HTTP clients use it
    without being told."""
    from authhooks.runtime.proxy_listener import hand_over

    url = hand_over(door)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ[name] = url


def main(out_fd: int) -> None:
    channel = Channel(out_fd)
    message = channel.receive()
    if message is None or message.get("op") != "load":
        raise SystemExit("expected a load frame")
    limits: dict[str, int] = message["limits"]
    # A process group of its own: kill(0, ...) from hook code reaches nothing
    # outside the sandbox (bwrap, which started it, is in the one it came with).
    os.setpgid(0, 0)
    limit_resources(limits)
    seccomp.install(message["seccomp_library"])
    door: int | None = message.get("egress")  # the egress broker's door, if any
    close_other_descriptors({0, 1, 2, out_fd} | ({door} if door is not None else set()))
    if door is not None:
        open_egress(door)  # and the door is closed: hook code gets no word to the server
    consoles = [Console(channel, stream, limits) for stream in ("stdout", "stderr", "log")]
    sys.stdout, sys.stderr = consoles[0], consoles[1]
    # `logging` works as hook authors expect: INFO and up, one line per record.
    logging.basicConfig(
        level=logging.INFO, stream=consoles[2], format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        function, is_async, entry = load(message["source"], message["entries"])
    except SyntaxError as error:
        channel.send(
            {
                "op": "load_error",
                "type": "SyntaxError",
                "line": error.lineno,
                "message": f"{error.msg} (hook.py, line {error.lineno})",
            }
        )
        return
    except BaseException as error:
        line = next(
            (
                frame.lineno
                for frame in reversed(traceback.extract_tb(error.__traceback__))
                if frame.filename == FILENAME
            ),
            None,
        )
        channel.send(
            {
                "op": "load_error",
                "type": _cut(type(error).__name__),
                "line": line,
                "message": _cut(str(error) or type(error).__name__),
            }
        )
        return
    channel.send({"op": "ready", "entry": entry["function"]})
    serve(channel, function, is_async, entry.get("api"), consoles, limits)
