"""Frames between the supervisor and a worker: a 4-byte big-endian length, then
that many bytes of UTF-8 JSON. A frame carries nothing else: no pickles, no
code objects. Example, supervisor to worker::

    b"\\x00\\x00\\x00\\x25" b'{"op":"invoke","id":7,"args":{"n":1}}'

Runs on both sides of the sandbox; standard library only. ``decode`` is for
the worker, which reads only what the supervisor wrote; the supervisor reads
what hook code may have forged, and decodes it with ``worker_handle.decode_answer``.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

HEADER = struct.Struct(">I")
# Large enough for any sane event, small enough to refuse floods. What a worker
# may send is capped far lower, by the limits it was given (worker_handle.Worker).
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
# What a worker sends past a cut, so that the server, which redacts secrets
# and then cuts, still finds a secret that straddles the cut whole.
REDACTION_ROOM = 4096
# Error messages (and each of their traceback lines) are kept at most this long.
MAX_TEXT = 4000
MAX_TRACEBACK_LINES = 50
# A console line's frame beyond its line: {"op":"log","id":<up to 18 digits>,...}.
LOG_ENVELOPE_BYTES = 128
# JSON writes a character in at most 6 bytes (a control character as \u001f).
MAX_BYTES_PER_CHAR = 6


class ProtocolError(Exception):
    """A frame broke the protocol: too large, not JSON, too deep, not an object, or
    holding a string that is not text."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding ``message``."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    # The other side refuses a deeper frame, and the worker that sent it: a hook's
    # result nested that deep is a bad result, told before it is sent.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and depth(message) > MAX_DEPTH:
        raise ProtocolError(f"frame is nested deeper than {MAX_DEPTH}")
    return HEADER.pack(len(body)) + body


def log_message(call_id: int, stream: str, line: str) -> dict[str, Any]:
    """A console line, as the worker sends it. The order of its keys is part of
    the protocol: the supervisor takes the frame apart by LOG_HEAD."""
    return {"op": "log", "id": call_id, "stream": stream, "line": line}


# How the body of ``encode(log_message(...))`` begins; then come the line, a
# JSON string, and "}". A frame that claims to be a console line costs the
# supervisor a match of this and a parse of one string, whatever else it holds.
LOG_HEAD = re.compile(
    rb'\{"op":"log","id":(0|[1-9][0-9]{0,17}),"stream":"(stdout|stderr|log)","line":'
)


def decode(body: bytes) -> dict[str, Any]:
    """The message in one frame's body, checked for shape and depth."""
    try:
        message = _DECODER.decode(body.decode())
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"frame is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    # Nesting needs brackets: only a frame with more of them than the cap can be too deep.
    brackets = body.count(b"[") + body.count(b"{")
    if brackets > MAX_DEPTH and depth(message) > MAX_DEPTH:
        raise ProtocolError(f"frame is nested deeper than {MAX_DEPTH}")
    # A lone surrogate can only come in as an escape (the body is valid UTF-8), and
    # no database or encoder takes one: look for one only when an escape is there.
    if (b"\\ud" in body or b"\\uD" in body) and not is_text(message):
        raise ProtocolError("frame holds a string with a lone surrogate")
    return message


def is_text(value: Any) -> bool:
    """Whether every string in a JSON value (keys too) can be written as UTF-8.
    Encoding it again is a walk in C: far quicker than one in Python over a
    frame a hostile worker filled with escapes."""
    try:
        json.dumps(value, ensure_ascii=False, check_circular=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


class FrameReader:
    """Splits a byte stream into frame bodies; refuses a frame over the size cap early."""

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        bodies: list[bytes] = []
        start = 0
        while len(self._buffer) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer, start)
            if length > self._max:
                raise ProtocolError(f"frame of {length} bytes exceeds {self._max}")
            end = start + HEADER.size + length
            if len(self._buffer) < end:
                break
            bodies.append(bytes(self._buffer[start + HEADER.size : end]))
            start = end
        # Once per read, not once per frame: a read can hold thousands of tiny frames.
        del self._buffer[:start]
        return bodies


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
