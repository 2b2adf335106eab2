"""Which repository URLs a git source may name: https and ssh (``ssh://`` or
scp-like ``git@host:path``); ``file://`` and loopback hosts only when the
operator allows local repositories (tests, local development)."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from authhooks.errors import InvalidInput

MAX_URL_CHARS = 2048
# git's scp-like syntax: [user@]host:path, no scheme, no slash before the colon.
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$"
)
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_INTERNAL = "loopback and private-network hosts are refused"
# A label with a letter other than a hex digit or x: a name, never a numeric address.
_HOST_NAME_LIKE = re.compile(r"[g-wyz]")


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine, or an address inside a private network
    (a source must not make the server reach what the internet cannot)."""
    host = host.strip("[]").rstrip(".").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    address = _address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, in any spelling a resolver takes (``127.1``,
    ``0x7f000001``, ``2130706433``, ``017700000001``, ``0``); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and not _HOST_NAME_LIKE.search(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def origin(url: str) -> tuple[str, str, int | None]:
    """Where ``url`` connects: scheme, host and port; credentials belong to it."""
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        return ("ssh", (match["host"] if match else "").lower(), None)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def check_repository(url: str, *, allow_local: bool) -> str:
    """``url`` as given when a source may use it; InvalidInput saying why not."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"repository: longer than {MAX_URL_CHARS} characters")
    if not url or any(ord(c) < 0x21 or c == "\x7f" for c in url) or url.startswith("-"):
        raise InvalidInput("repository: give an https://, ssh:// or git@host:path URL")
    if "::" in url.split("/", 1)[0]:
        # <transport>::<address> picks a remote helper (ext:: runs a command): never.
        raise InvalidInput("repository: transport:: URLs are not allowed; give https:// or ssh")
    local = "the server's setting AUTHHOOKS_GIT_ALLOW_LOCAL_REPOSITORIES is off"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_local:
            raise InvalidInput(f"repository: file:// repositories are refused ({local})")
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput(
                "repository: a file:// URL names an absolute path: file:///srv/x.git"
            )
        return url
    # Plain http only to this machine (a test's git http-backend), when local is allowed.
    if scheme == "http" and not (allow_local and _is_loopback(parts.hostname or "")):
        raise InvalidInput(
            "repository: http:// is not allowed (credentials and code would cross the "
            "network in clear); give https://"
        )
    if scheme in ("https", "ssh", "http"):
        host = parts.hostname or ""
        if not host or not (_HOST.match(host) or _is_ip(host)):
            raise InvalidInput(f"repository: {scheme}:// URL without a valid host")
        if parts.password is not None:
            raise InvalidInput(
                "repository: put no password or token in the URL; send it as "
                "credentials.token, which is stored sealed and never shown"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise InvalidInput("repository: its port is not a number from 1 to 65535") from None
        if not parts.path.strip("/"):
            raise InvalidInput("repository: the URL names no repository path")
        if _is_loopback(host) and not allow_local:
            raise InvalidInput(f"repository: {_INTERNAL} ({local})")
        return url
    if not parts.scheme or "://" not in url:
        match = _SCP_LIKE.match(url)
        if match and not match["host"].isdigit():
            if _is_loopback(match["host"]) and not allow_local:
                raise InvalidInput(f"repository: {_INTERNAL} ({local})")
            return url
    raise InvalidInput(
        f"repository: {scheme or 'this'} URL is not allowed; give https://host/owner/repo.git, "
        "ssh://git@host/owner/repo.git or git@host:owner/repo.git"
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_ssh(url: str) -> bool:
    return url.lower().startswith("ssh://") or (
        "://" not in url and _SCP_LIKE.match(url) is not None
    )


def commit_link(url: str, commit: str) -> str | None:
    """A web link to ``commit`` when the repository is on a host we know the
    pages of (GitHub, GitLab, Codeberg, Bitbucket); None otherwise."""
    match = _SCP_LIKE.match(url) if "://" not in url else None
    if match:
        host, path = match["host"], match["path"]
    else:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    path = path.strip("/").removesuffix(".git")
    host = host.lower()
    if host in ("github.com", "codeberg.org"):
        return f"https://{host}/{path}/commit/{commit}"
    if host == "gitlab.com":
        return f"https://{host}/{path}/-/commit/{commit}"
    if host == "bitbucket.org":
        return f"https://{host}/{path}/commits/{commit}"
    return None
