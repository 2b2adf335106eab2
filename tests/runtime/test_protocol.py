"""Frames: what decoding refuses, on both sides of the sandbox."""

from __future__ import annotations

import pytest

from authhooks.runtime.protocol import ProtocolError, decode


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
