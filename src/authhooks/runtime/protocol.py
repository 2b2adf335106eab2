"""Frames between the supervisor and a worker: a 4-byte big-endian length, then
that many bytes of UTF-8 JSON. Nothing else crosses the boundary: no pickles,
no code objects. Example, supervisor to worker::

    b"\\x00\\x00\\x00\\x2a" b'{"op":"invoke","id":7,"args":{"n":1},"s":{}}'

Runs on both sides of the sandbox; standard library only.
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
# Large enough for any sane event or result, small enough to refuse floods.
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


class ProtocolError(Exception):
    """A frame broke the protocol: too large, not JSON, too deep, not an object, or
    holding a string that is not text."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding ``message``."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


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
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self._max:
                raise ProtocolError(f"frame of {length} bytes exceeds {self._max}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            bodies.append(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return bodies


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
