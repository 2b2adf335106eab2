"""Which hosts and addresses a hook may reach: the SSRF guard of the egress broker.

Hook code is hostile, so a request passes three gates, each in this module:

1. the host must be a DNS name (``normalize_host``): no IP literal in any
   notation libc would accept, no local-only name;
2. the name must be on the hook's allowlist (``parse_rule``, ``matches``);
3. the broker resolves the name itself and connects only to addresses that
   are publicly routable unicast (``resolve``, ``usable``, ``check_address``),
   so a name pointing at 127.0.0.1 or the cloud metadata service gets nowhere.

The address rules list every special-purpose range of the IANA registries
(RFC 6890) explicitly rather than trusting ``ipaddress.is_global`` alone, which
has had gaps across Python versions (3.11 calls 224.0.0.1 and fec0::1 global).
Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import ipaddress
import re
import socket
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORT = 443
MAX_NAME = 253

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# inet_aton reads a last part of digits (decimal or octal) or 0x-hex as a number;
# no public DNS name ends in such a label.
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]{1,5}")

RESOLVE_TIMEOUT = 5.0
_RESOLVERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="egress-dns")


class Refused(Exception):
    """A host or address a hook may not reach; ``str()`` says why, for the hook author."""


class _AddressLiteral(Refused):
    """The host is an IP address written as text."""


@dataclass(frozen=True)
class Rule:
    """One allowlist entry: an exact name or ``*.suffix``, and the one port it opens."""

    pattern: str
    port: int


# --- names -----------------------------------------------------------------

# Names that never lead to the public internet: RFC 6761 (localhost),
# RFC 6762 (.local), ICANN's 2024 reservation of .internal, RFC 8375
# (.home.arpa), reverse-DNS trees, and the Unix convention .localdomain.
_LOCAL_NAMES = (
    ("localhost", "names the local machine"),
    ("local", "is a multicast DNS name (.local), resolved on the local network"),
    ("internal", "is under .internal, reserved for private networks"),
    ("localdomain", "is under .localdomain, a local-only name"),
    ("home.arpa", "is under .home.arpa, reserved for home networks (RFC 8375)"),
    ("in-addr.arpa", "is a reverse-DNS name (.in-addr.arpa), not a host"),
    ("ip6.arpa", "is a reverse-DNS name (.ip6.arpa), not a host"),
)


def normalize_host(host: str) -> str:
    """The canonical form of a host a client asked for (CONNECT line or absolute URL).

    Lower-cased, one trailing dot stripped, IDNA-encoded. Raises ``Refused``
    for anything that is not a fully qualified public DNS name: IP literals in
    any notation (``[::1]``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
    ``127.1``), invalid labels, local-only names and single-label names, which
    the resolver would complete from its search list into internal names.
    """
    name = _canonical(host)
    if "." not in name:
        raise Refused(f"{name} is a single-label name; hosts must be fully qualified")
    return name


def parse_rule(text: str) -> Rule:
    """An allowlist entry as a hook owner writes it: ``api.slack.com`` (port 443),
    ``*.hubspot.com``, ``hooks.example.com:8443``. Raises ``ValueError`` saying
    what is wrong, so that a bad entry is refused when it is saved.

    ``*`` stands only as the whole leftmost label and covers names at any depth
    below at least two labels: ``*.com`` would open a whole top-level domain.
    """
    entry = text.strip()
    if not entry:
        raise ValueError("empty allowlist entry")
    if "/" in entry:
        raise ValueError(f"{entry!r}: write a host name such as api.example.com, not a URL")
    if entry.startswith("[") or entry.count(":") > 1:
        if _is_ipv6_literal(entry):
            raise ValueError(f"rules name hosts, not addresses; {entry} is an IP address")
        raise ValueError(f"{entry!r} is not a valid allowlist entry")
    name, colon, port_text = entry.partition(":")
    port = _port(port_text) if colon else DEFAULT_PORT
    if name == "*":
        raise ValueError("a bare * would allow every host; name a domain, as in *.example.com")
    wildcard = name.startswith("*.")
    base = name[2:] if wildcard else name
    if "*" in base:
        raise ValueError(
            f"{name}: * may only stand as the whole leftmost label, as in *.example.com"
        )
    try:
        host = _canonical(base)
    except _AddressLiteral:
        raise ValueError(f"rules name hosts, not addresses; {name} is an IP address") from None
    except Refused as refused:
        raise ValueError(str(refused)) from None
    if "." not in host:
        if wildcard:
            raise ValueError(
                f"*.{host} would match every name under a single label; "
                "name at least two, as in *.example.com"
            )
        raise ValueError(f"{host} is a single-label name; hosts must be fully qualified")
    return Rule(f"*.{host}" if wildcard else host, port)


def matches(host: str, rules: Sequence[Rule], port: int) -> bool:
    """Whether ``host`` (as ``normalize_host`` returns it) on ``port`` is allowed.

    An exact rule matches that name only; ``*.example.com`` matches names at any
    depth below ``example.com`` but not ``example.com`` itself.
    """
    for rule in rules:
        if rule.port != port:
            continue
        if rule.pattern.startswith("*."):
            if host.endswith(rule.pattern[1:]):
                return True
        elif host == rule.pattern:
            return True
    return False


def _canonical(host: str) -> str:
    """Lower-case, IDNA, one trailing dot off; refuse bad, numeric and local names."""
    if not host:
        raise Refused("empty host")
    if host.startswith("[") or ":" in host:
        if _is_ipv6_literal(host):
            raise _AddressLiteral(_literal_reason(host))
        raise Refused(f"{host!r} is not a valid host name")
    if host.isascii():
        name = host.lower()
    else:
        # IDNA 2003 (RFC 3490) as the stdlib's encodings.idna implements it:
        # nameprep folds case and width and the codec splits on U+3002 and U+FF0E
        # too, so fullwidth digits and ideographic full stops spelling an address
        # come out as "127.0.0.1" and are checked as such below.
        try:
            name = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise Refused(f"{host!r} is not a valid internationalised host name") from None
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise Refused("empty host")
    if len(name) > MAX_NAME:
        raise Refused(f"host name is longer than {MAX_NAME} characters")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise Refused(
                f"{host!r} is not a valid host name: each label must be 1 to 63 letters, "
                "digits or hyphens, not starting or ending with a hyphen"
            )
    if _NUMERIC.fullmatch(labels[-1]):
        raise _AddressLiteral(_literal_reason(host))
    for suffix, reason in _LOCAL_NAMES:
        if name == suffix or name.endswith("." + suffix):
            raise Refused(f"{name} {reason}")
    return name


def _literal_reason(host: str) -> str:
    return f"hosts must be names; {host} is an IP address (in any notation)"


def _is_ipv6_literal(text: str) -> bool:
    """``::1``, ``[::1]``, ``[fe80::1%eth0]:443`` and the like."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} must be a number from 1 to 65535")
    return int(text)


# --- addresses -------------------------------------------------------------

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_METADATA = "a cloud metadata address"

# Addresses of instance metadata and platform services. Most fall in ranges
# refused anyway; they are named so the reason says what was at stake.
# 168.63.129.16 is Azure's WireServer: a public address, reachable only from
# inside Azure, that serves VM configuration.
_METADATA_V4 = (
    _V4("169.254.169.254/32"),  # AWS, GCP, Azure, OCI, DigitalOcean, ...
    _V4("169.254.170.2/32"),  # AWS ECS task credentials
    _V4("169.254.170.23/32"),  # AWS EKS pod identity
    _V4("100.100.100.200/32"),  # Alibaba Cloud
    _V4("168.63.129.16/32"),  # Azure WireServer
)
_METADATA_V6 = (
    _V6("fd00:ec2::254/128"),  # AWS IMDS over IPv6
    _V6("fd00:ec2::23/128"),  # AWS EKS pod identity over IPv6
)

# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), plus
# multicast and the reserved class E; specific entries before broader ones.
_RANGES_V4 = (
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address (0.0.0.0/8, RFC 1122)"),
    (_V4("10.0.0.0/8"), "a private address (RFC 1918)"),
    (_V4("172.16.0.0/12"), "a private address (RFC 1918)"),
    (_V4("192.168.0.0/16"), "a private address (RFC 1918)"),
    (_V4("100.64.0.0/10"), "a shared carrier-grade NAT address (100.64.0.0/10, RFC 6598)"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address (169.254.0.0/16)"),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment (192.0.0.0/24, RFC 6890)"),
    (_V4("192.0.2.0/24"), "a documentation address (192.0.2.0/24, RFC 5737)"),
    (_V4("198.51.100.0/24"), "a documentation address (198.51.100.0/24, RFC 5737)"),
    (_V4("203.0.113.0/24"), "a documentation address (203.0.113.0/24, RFC 5737)"),
    (_V4("192.88.99.0/24"), "a deprecated 6to4 relay anycast address (RFC 7526)"),
    (_V4("198.18.0.0/15"), "a benchmarking address (198.18.0.0/15, RFC 2544)"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address (240.0.0.0/4)"),
)

# IANA IPv6 Special-Purpose Address Registry. The forms that embed an IPv4
# address are handled before this table, in check_address.
_RANGES_V6 = (
    (_V6("::/128"), "the unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("::/96"), "a deprecated IPv4-compatible address (::/96, RFC 4291)"),
    (_V6("64:ff9b:1::/48"), "in the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215)"),
    (_V6("100::/64"), "a discard-only address (100::/64, RFC 6666)"),
    (_V6("2001::/32"), "a Teredo tunnelling address (2001::/32, RFC 4380)"),
    (_V6("2001:2::/48"), "a benchmarking address (2001:2::/48, RFC 5180)"),
    (_V6("2001:10::/28"), "a deprecated ORCHID address (2001:10::/28, RFC 4843)"),
    (_V6("2001:20::/28"), "an ORCHIDv2 identifier (2001:20::/28, RFC 7343)"),
    (_V6("2001::/23"), "an IETF protocol assignment (2001::/23, RFC 2928)"),
    (_V6("2001:db8::/32"), "a documentation address (2001:db8::/32, RFC 3849)"),
    (_V6("3fff::/20"), "a documentation address (3fff::/20, RFC 9637)"),
    (_V6("5f00::/16"), "a segment routing identifier (5f00::/16, RFC 9602)"),
    (_V6("fc00::/7"), "a unique local address (fc00::/7, RFC 4193)"),
    (_V6("fe80::/10"), "a link-local address (fe80::/10)"),
    (_V6("fec0::/10"), "a deprecated site-local address (fec0::/10, RFC 3879)"),
    (_V6("ff00::/8"), "a multicast address"),
)
# Everything public in IPv6 is allocated from here; the rest is reserved by IANA.
_GLOBAL_UNICAST = _V6("2000::/3")

_MAPPED = _V6("::ffff:0:0/96")
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")


def check_address(address: Address) -> None:
    """Raise ``Refused`` unless ``address`` is publicly routable unicast.

    An IPv6 address that carries an IPv4 address (IPv4-mapped, NAT64 well-known
    prefix, 6to4) is judged by the IPv4 address it leads to. The local-use NAT64
    prefix is refused outright: its operator picks where the IPv4 address sits,
    so no one layout can be checked. The reason names the range, e.g.
    "10.1.2.3 is a private address (RFC 1918)".
    """
    if isinstance(address, ipaddress.IPv4Address):
        _check_v4(address)
    else:
        _check_v6(address)


def _check_v4(address: ipaddress.IPv4Address) -> None:
    if any(address in network for network in _METADATA_V4):
        raise Refused(f"{address} is {_METADATA}")
    for network, reason in _RANGES_V4:
        if address in network:
            raise Refused(f"{address} is {reason}")
    _check_flags(address)


def _check_v6(address: ipaddress.IPv6Address) -> None:
    if address.scope_id:
        raise Refused(f"{address} carries a zone index; public addresses need none")
    if any(address in network for network in _METADATA_V6):
        raise Refused(f"{address} is {_METADATA}")
    embedded = _embedded_v4(address)
    if embedded is not None:
        kind, inner = embedded
        try:
            _check_v4(inner)
        except Refused as refused:
            raise Refused(f"{address} is {kind} for {inner}, and {refused}") from None
        return
    for network, reason in _RANGES_V6:
        if address in network:
            raise Refused(f"{address} is {reason}")
    if address not in _GLOBAL_UNICAST:
        raise Refused(f"{address} is outside the global unicast range 2000::/3")
    _check_flags(address)


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address that connecting to ``address`` would reach, if any."""
    if address in _MAPPED:
        return "an IPv4-mapped address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return "a NAT64 address (64:ff9b::/96)", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return "a 6to4 address (2002::/16)", ipaddress.IPv4Address(
            (int(address) >> 80) & 0xFFFFFFFF
        )
    return None


def _check_flags(address: Address) -> None:
    """The stdlib's own verdict, as a net under the explicit tables."""
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        raise Refused(f"{address} is not a publicly routable address")


# --- resolution --------------------------------------------------------------


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses ``host`` resolves to, unique, in the resolver's order.

    The broker connects to these very addresses after ``usable`` has checked
    them; it never looks the name up again, so DNS rebinding between check and
    connect has nothing to exploit. ``host`` must already be normalized: the
    resolver would happily read "2130706433" as 127.0.0.1.
    """
    loop = asyncio.get_running_loop()
    try:
        # On a pool of its own, so that a hook's slow DNS server holds up only
        # other egress lookups (names have two labels at least, so the resolver
        # tries them as they are before any search domain).
        infos = await asyncio.wait_for(
            loop.run_in_executor(
                _RESOLVERS,
                functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
            ),
            RESOLVE_TIMEOUT,
        )
    except TimeoutError:
        raise Refused(f"resolving {host} took longer than {RESOLVE_TIMEOUT:g} s") from None
    except (OSError, UnicodeError):
        raise Refused(f"cannot resolve {host}") from None
    found: list[Address] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            address = ipaddress.ip_address(str(sockaddr[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    if not found:
        raise Refused(f"cannot resolve {host}")
    return found


def usable(addresses: Iterable[Address]) -> list[Address]:
    """Those of ``addresses`` that ``check_address`` accepts, in order.

    If none does, ``Refused`` carries the first address's reason, so a name
    that resolves to 127.0.0.1 is refused as "127.0.0.1 is a loopback address".
    """
    accepted: list[Address] = []
    first: Refused | None = None
    for address in addresses:
        try:
            check_address(address)
        except Refused as refused:
            first = first or refused
        else:
            accepted.append(address)
    if accepted:
        return accepted
    raise first or Refused("no addresses to connect to")


def local_addresses() -> frozenset[Address]:
    """This host's own addresses (read once, at start): the broker connects from
    here, so a public address of the host itself must be as off-limits as loopback."""
    found: set[Address] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            digits = line.split()[0]
            found.add(ipaddress.IPv6Address(int(digits, 16)))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
                found.add(ipaddress.IPv4Address(answer[20:24]))
    finally:
        probe.close()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            with contextlib.suppress(ValueError):
                found.add(ipaddress.ip_address(info[4][0]))
    return frozenset(found)


_SIOCGIFADDR = 0x8915
