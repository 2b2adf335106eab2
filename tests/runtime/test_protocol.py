"""Frames: what decoding refuses, on both sides of the sandbox."""

from __future__ import annotations

import orjson
import pytest

from authhooks.runtime.protocol import (
    HEADER,
    LOG_HEAD,
    MAX_DEPTH,
    FrameReader,
    ProtocolError,
    decode,
    encode,
    log_message,
)
from authhooks.runtime.worker_handle import decode_answer


@pytest.mark.parametrize(
    "body",
    [
        rb'{"line":"\ud800"}',
        rb'{"line":"a\uDFFF"}',
        rb'{"\udc00":1}',
        rb'{"deep":[[{"x":"\ud83d"}]]}',
        rb'{"line":"\ud800\u0041"}',
        rb'{"line":"\ude00\ud83d"}',
        rb'{"line":"\udABC"}',
    ],
)
def test_a_lone_surrogate_breaks_the_protocol(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="lone surrogate"):
        decode(body)


def test_text_that_only_looks_like_an_escape_passes() -> None:
    # A whole pair, and a backslash written before "ud" as text.
    message = decode(rb'{"a":"\ud83d\ude00","b":"C:\\ud\\users"}')
    assert message == {"a": "\U0001f600", "b": "C:\\ud\\users"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[1]", "not a JSON object"),
        (b'{"a":NaN}', "not JSON"),
        (b"{", "not JSON"),
        (b'{"a":' + b"[" * 70 + b"]" * 70 + b"}", "deeper"),
    ],
)
def test_other_broken_frames(body: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        decode(body)


def nested(levels: int) -> bytes:
    """A frame body nested ``levels`` deep, the object itself counted."""
    return b'{"a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def test_the_supervisor_takes_frames_as_deep_as_the_cap_and_no_deeper() -> None:
    assert decode_answer(nested(MAX_DEPTH)) == decode(nested(MAX_DEPTH))
    for body in (nested(MAX_DEPTH + 1), nested(2000)):
        with pytest.raises(ProtocolError, match="deep"):
            decode_answer(body)


@pytest.mark.parametrize(
    "body",
    [
        # Each closes the arrays the body is parsed in and opens others: not one value.
        b'{"op":"ready"}],[{"op":"ready"}',
        b'{"op":"ready"}]' + b"]" * 1000 + b",[" + b"[" * 1000 + b'{"op":"ready"}',
        b'{"op":"ready"} {"op":"ready"}',
        b'{"op":"ready"}]',
        b"",
    ],
)
def test_the_supervisor_takes_one_json_value_only(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_answer(body)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (rb'{"line":"\ud800"}', "surrogate"),
        (rb'{"\udc00":1}', "surrogate"),
        (b'{"a":NaN}', "not JSON"),
        (b'{"a":1e999}', "not JSON"),
        (b"[1]", "not a JSON object"),
    ],
)
def test_the_supervisor_refuses_what_is_not_text_or_not_an_object(body: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        decode_answer(body)


def test_the_supervisor_reads_what_the_worker_writes() -> None:
    message = {"op": "error", "id": 3, "error": {"message": '\U0001f600 \x01 "quoted" \\'}}
    assert decode_answer(encode(message)[HEADER.size :]) == message
    text = 'a "line" \\ \x00 \U0001f600'
    body = encode(log_message(12, "stderr", text))[HEADER.size :]
    head = LOG_HEAD.match(body)
    assert head is not None
    assert (head[1], head[2]) == (b"12", b"stderr")
    assert orjson.loads(body[head.end() : -1]) == text


def test_a_read_of_many_frames_splits_them_all() -> None:
    frames = [encode({"n": n}) for n in range(5000)]
    data = b"".join(frames)
    reader = FrameReader()
    bodies = reader.feed(data[:-3]) + reader.feed(data[-3:])
    assert bodies == [frame[HEADER.size :] for frame in frames]
