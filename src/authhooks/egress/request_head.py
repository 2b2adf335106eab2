"""A proxy request's head as the egress broker reads it, and the answer to a
refused request.

A hook speaks HTTP proxy: ``CONNECT host:port`` (TLS then runs end to end), or
a plain-HTTP request with an absolute URL, forwarded with its head rewritten
here. ``parse_head`` reads a head one way only and refuses one that a server
could read another way. ``Refusal`` is how the broker turns down a request at
any step, and ``refusal_answer`` what the hook's client then reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


class Refusal(Exception):
    """The connection is refused: the hook gets ``status`` and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Forward:
    """What a plain-HTTP request sends on: its rewritten head, then its body only."""

    head: bytes
    body_bytes: int


_METHOD = re.compile(r"[A-Z]{1,16}")
# RFC 9110 §5.6.2: a field name is a token, with nothing between it and its colon.
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Control characters, tab aside: a bare CR or LF, or a NUL, ends a line for some
# servers and not for others.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_head(head: bytes) -> tuple[str, str, int, Forward]:
    """(method, host, port, what to send on for plain HTTP) of a proxy request.

    A plain-HTTP head is forwarded only if every server reads it the way the broker
    does: lines end in CRLF and nothing else, no line is folded, Host and
    Content-Length come once at most, and there is no Transfer-Encoding. Otherwise
    a hook could slip a second Host, a second request or a kept-alive connection
    past the rewrite below.
    """
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(400, "the request head is not ASCII") from None
    request_line, *field_lines = text.removesuffix("\r\n\r\n").split("\r\n")
    parts = request_line.split(" ")
    if (
        len(parts) != 3
        or not _METHOD.fullmatch(parts[0])
        or parts[2] not in _VERSIONS
        or _CONTROL.search(request_line)
        or "\t" in request_line
    ):
        raise Refusal(400, f"malformed request line {request_line[:100]!r}")
    fields: list[tuple[str, str, str]] = []  # (lower-case name, value, the line)
    for line in field_lines:
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name) or _CONTROL.search(value):
            raise Refusal(
                400,
                f"malformed header line {line[:100]!r}: each ends in CRLF, "
                "its name followed directly by ':'",
            )
        fields.append((name.lower(), value.strip(" \t"), line))
    method, target, version = parts
    if method == "CONNECT":
        host, port = _authority(target, None)
        return method, host, port, Forward(b"", 0)
    try:
        url = urlsplit(target)
    except ValueError:
        raise Refusal(400, f"malformed URL {target[:100]!r}") from None
    if url.scheme != "http" or not url.netloc:
        raise Refusal(400, "send CONNECT for https, or an absolute http:// URL")
    host, port = _authority(url.netloc, 80)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    headers: list[str] = []
    body_bytes: int | None = None
    seen_host = False
    for name, value, line in fields:
        if name == "transfer-encoding":
            raise Refusal(400, "send a request body with Content-Length, not Transfer-Encoding")
        if name == "host":
            if seen_host:
                raise Refusal(400, "more than one Host header")
            seen_host = True
            continue
        if name == "content-length":
            if body_bytes is not None:
                raise Refusal(400, "more than one Content-Length header")
            if not value.isdigit() or len(value) > 12:
                raise Refusal(400, "bad Content-Length")
            body_bytes = int(value)
        if name not in _HOP_BY_HOP:
            headers.append(line)
    # The Host is the target's, whatever the hook wrote: one allowed name must not
    # become a way to other sites behind the same front end.
    host_header = f"Host: {url.netloc}"
    lines = [f"{method} {path} {version}", host_header, *headers, "Connection: close", "", ""]
    return method, host, port, Forward("\r\n".join(lines).encode("ascii"), body_bytes or 0)


_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})
_HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


def _authority(authority: str, default_port: int | None) -> tuple[str, int]:
    if "@" in authority:
        raise Refusal(400, "credentials in the proxy target are not allowed")
    host, port = authority, default_port
    if authority.startswith("["):
        closing = authority.find("]")
        host, rest = authority[: closing + 1], authority[closing + 1 :]
        if rest:
            port = _port(rest.removeprefix(":"))
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
        port = _port(port_text)
    if port is None:
        raise Refusal(400, f"CONNECT needs host:port, not {authority[:100]!r}")
    return host, port


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise Refusal(400, f"bad port {text[:10]!r}")
    return int(text)


_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
}


def refusal_answer(refusal: Refusal) -> bytes:
    """What the hook's HTTP client reads: a status and the reason, in plain text."""
    body = f"egress refused: {refusal.reason}\n".encode()
    # The reason goes in the status line too: clients that drop a refused CONNECT's
    # body (http.client: "Tunnel connection failed: 403 ...") still show it.
    phrase = "".join(c if c.isascii() and c.isprintable() else "?" for c in refusal.reason)
    head = (
        f"HTTP/1.1 {refusal.status} {_PHRASES.get(refusal.status, 'Refused')}: {phrase[:200]}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
