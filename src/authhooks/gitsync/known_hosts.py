"""An ssh repository's host keys, as OpenSSH's known_hosts lines, checked on save.

A fetch over ssh trusts exactly these lines (StrictHostKeyChecking=yes, no
other known_hosts file): a server whose key is not among them is refused,
so that nobody between the server and the git host can serve another
repository. Each line must parse (hosts, a key type we know, its key in
base64, whose own type agrees) and name the repository's host, in any of
OpenSSH's forms: ``host``, ``[host]:port``, patterns with ``*``/``?``/``!``,
or hashed (``|1|salt|hash``, as ``ssh-keyscan -H`` writes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from urllib.parse import urlsplit

from authhooks.errors import InvalidInput
from authhooks.gitsync.repository import _SCP_LIKE, is_ssh

MAX_BYTES = 16 * 1024
MAX_LINES = 64
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MARKERS = frozenset({"@cert-authority", "@revoked"})


def ssh_host(url: str) -> tuple[str, int]:
    """The host and port an ssh repository URL connects to."""
    if "://" in url:
        parts = urlsplit(url)
        return (parts.hostname or "").lower(), parts.port or 22
    match = _SCP_LIKE.match(url)
    if match is None:
        raise InvalidInput("repository: not an ssh repository")
    return match["host"].lower(), 22


def host_name(host: str, port: int) -> str:
    """The name known_hosts gives ``host`` on ``port``: OpenSSH's own form."""
    return host if port == 22 else f"[{host}]:{port}"


def check(text: str, repository: str) -> str:
    """``text`` cleaned (one key a line, ending with a newline) when every line
    parses and names the repository's host; InvalidInput saying which line not."""
    if not is_ssh(repository):
        raise InvalidInput(
            "ssh_known_hosts: only for an ssh repository (ssh:// or git@host:path); "
            "an https repository is checked by its certificate: send null"
        )
    if len(text.encode()) > MAX_BYTES:
        raise InvalidInput(f"ssh_known_hosts: longer than {MAX_BYTES} bytes")
    if "\x00" in text or "\r" in text.replace("\r\n", "\n"):
        raise InvalidInput("ssh_known_hosts: give text lines, without NUL or lone CR")
    host, port = ssh_host(repository)
    name = host_name(host, port)
    kept: list[str] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        _check_line(line, number, name)
        kept.append(line)
    if not kept:
        raise InvalidInput(
            f"ssh_known_hosts: no key for {name}; give the lines "
            f"`ssh-keyscan{' -p ' + str(port) if port != 22 else ''} {host}` prints, "
            "checked against the fingerprints your git host publishes"
        )
    if len(kept) > MAX_LINES:
        raise InvalidInput(f"ssh_known_hosts: more than {MAX_LINES} keys")
    return "\n".join(kept) + "\n"


def _check_line(line: str, number: int, name: str) -> None:
    where = f"ssh_known_hosts: line {number}"
    fields = line.split()
    if fields[0].startswith("@"):
        if fields[0] not in MARKERS:
            raise InvalidInput(f"{where}: unknown marker {fields[0][:40]!r}")
        fields = fields[1:]
    if len(fields) < 3:
        raise InvalidInput(f"{where}: give `hosts key-type base64-key [comment]`")
    hosts, key_type, key = fields[:3]
    if key_type not in KEY_TYPES:
        raise InvalidInput(
            f"{where}: key type {key_type[:60]!r} is not one of {', '.join(sorted(KEY_TYPES))}"
        )
    try:
        blob = base64.b64decode(key, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        inner = blob[4 : 4 + length].decode()
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise InvalidInput(f"{where}: the key is not an ssh public key in base64") from None
    if inner != key_type or len(blob) <= 4 + length:
        raise InvalidInput(f"{where}: the key is not a valid {key_type} public key")
    if not _matches(hosts, name):
        raise InvalidInput(
            f"{where}: its hosts do not name {name}, the repository's host "
            "(a port other than 22 is written [host]:port)"
        )


def _matches(hosts: str, name: str) -> bool:
    if hosts.startswith("|1|"):
        try:
            _, _, salt, digest = hosts.split("|")
            expected = base64.b64decode(digest, validate=True)
            mine = hmac.new(base64.b64decode(salt, validate=True), name.encode(), hashlib.sha1)
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(mine.digest(), expected)
    matched = False
    for pattern in hosts.lower().split(","):
        negated = pattern.startswith("!")
        if _wildcard(pattern.removeprefix("!")).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def _wildcard(pattern: str) -> re.Pattern[str]:
    """OpenSSH's host pattern: ``*`` and ``?`` are wildcards, nothing else is special."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )
