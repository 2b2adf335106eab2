"""The egress SSRF guard: names, allowlist rules, address ranges and resolution."""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest

from authhooks.egress.rules import (
    Refused,
    Rule,
    check_address,
    matches,
    normalize_host,
    parse_rule,
    resolve,
    usable,
)

# --- addresses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # IPv4
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("127.255.255.254", "loopback"),
        ("10.1.2.3", "10.1.2.3 is a private address (RFC 1918)"),
        ("172.16.0.1", "private address (RFC 1918)"),
        ("172.31.255.255", "private address (RFC 1918)"),
        ("192.168.1.1", "private address (RFC 1918)"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
        ("0.1.2.3", "this network"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("192.0.0.1", "IETF protocol assignment"),
        ("192.0.0.9", "IETF protocol assignment"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        # IPv6
        ("::1", "::1 is a loopback address"),
        ("::", "unspecified"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "zone index"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("100::1", "discard"),
        ("2001::1", "Teredo"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "ORCHID"),
        ("2001:20::1", "ORCHIDv2"),
        ("2001:100::1", "IETF protocol assignment"),
        ("5f00::1", "segment routing"),
        ("4000::1", "outside the global unicast range"),
        ("::1:0:0:1", "outside the global unicast range"),
        ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"),
        ("fd00:ec2::23", "cloud metadata"),
        # IPv6 forms that carry an IPv4 address
        ("::ffff:127.0.0.1", "IPv4-mapped address for 127.0.0.1, and 127.0.0.1 is a loopback"),
        ("::ffff:7f00:1", "127.0.0.1 is a loopback address"),
        ("::ffff:10.0.0.1", "private address (RFC 1918)"),
        ("::ffff:169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("2002:7f00:1::", "6to4 address (2002::/16) for 127.0.0.1"),
        ("2002:a9fe:a9fe::1", "cloud metadata"),
        ("64:ff9b::a00:1", "NAT64 address (64:ff9b::/96) for 10.0.0.1, and 10.0.0.1 is a private"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b:1::a00:1", "local-use NAT64"),
        ("64:ff9b:1::808:808", "local-use NAT64"),
    ],
)
def test_special_addresses_are_refused_with_their_range(address: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        check_address(ipaddress.ip_address(address))
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82a::200e",
        # Public IPv4 behind the IPv6 forms that carry it: the same host.
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_accepted(address: str) -> None:
    check_address(ipaddress.ip_address(address))


def test_every_non_global_address_of_a_sample_is_refused() -> None:
    """Whatever the tables say, nothing the stdlib calls non-global gets through."""
    samples = [f"{a}.{b}.0.1" for a in range(256) for b in (0, 64, 128, 168, 254)]
    for text in samples:
        address = ipaddress.ip_address(text)
        if not address.is_global or address.is_multicast or address.is_reserved:
            with pytest.raises(Refused):
                check_address(address)


# --- names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("API.Slack.COM", "api.slack.com"),
        ("api.slack.com.", "api.slack.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("123.example.com", "123.example.com"),
        ("127.0.0.1.nip.io", "127.0.0.1.nip.io"),
        ("0x7f.example", "0x7f.example"),
    ],
)
def test_hosts_are_normalized(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1.",
        "8.8.8.8",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0x7F.0.0.1",
        "0x7f000001",
        "0X7F000001",
        "0x",
        "2130706433",
        "017700000001",
        "0177.0.0.1",
        "0177.0.0.01",
        "0x7f.0.0.0x1",
        "0x7f.0.1",
        "10.0x0.0.1",
        "0",
        "::1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "2001:db8::1",
        # Unicode spellings that IDNA folds into an address
        "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits
        "127\u30020\u30020\u30021",  # ideographic full stops
        "127\uff0e0\uff0e0\uff0e1",  # fullwidth full stops
    ],
)
def test_ip_literals_in_any_notation_are_refused(host: str) -> None:
    with pytest.raises(Refused) as refused:
        normalize_host(host)
    assert "hosts must be names" in str(refused.value)
    assert "is an IP address (in any notation)" in str(refused.value)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("localhost", "localhost names the local machine"),
        ("LOCALHOST", "local machine"),
        ("localhost.", "local machine"),
        ("api.localhost", "local machine"),
        ("lo\u00adcalhost", "local machine"),  # a soft hyphen that nameprep drops
        ("\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", "local machine"),  # fullwidth
        ("printer.local", "multicast DNS"),
        ("metadata.google.internal", "reserved for private networks"),
        ("box.localdomain", "local-only"),
        ("nas.home.arpa", "home networks"),
        ("1.0.0.127.in-addr.arpa", "reverse-DNS"),
        ("1.0.ip6.arpa", "reverse-DNS"),
    ],
)
def test_local_names_are_refused(host: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        normalize_host(host)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("", "empty host"),
        (".", "empty host"),
        ("a" * 250 + ".com", "longer than 253"),
        ("a" * 64 + ".com", "not a valid host name"),
        ("-a.example.com", "not a valid host name"),
        ("a-.example.com", "not a valid host name"),
        ("a..example.com", "not a valid host name"),
        ("example.com..", "not a valid host name"),
        ("under_score.example.com", "not a valid host name"),
        ("sp ace.example.com", "not a valid host name"),
        ("user@example.com", "not a valid host name"),
        ("example.com/path", "not a valid host name"),
        ("example.com:443", "not a valid host name"),
        ("exa\x00mple.com", "not a valid host name"),
        ("*.example.com", "not a valid host name"),
        ("bü..example", "not a valid internationalised host name"),
        ("intranet", "single-label name"),
    ],
)
def test_malformed_hosts_are_refused(host: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        normalize_host(host)
    assert reason in str(refused.value)


# --- rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("api.slack.com", Rule("api.slack.com", 443)),
        ("  API.Slack.com.  ", Rule("api.slack.com", 443)),
        ("*.hubspot.com", Rule("*.hubspot.com", 443)),
        ("*.eu.hubspot.com", Rule("*.eu.hubspot.com", 443)),
        ("hooks.example.com:8443", Rule("hooks.example.com", 8443)),
        ("*.example.com:80", Rule("*.example.com", 80)),
        ("example.com:1", Rule("example.com", 1)),
        ("example.com:65535", Rule("example.com", 65535)),
        ("bücher.example", Rule("xn--bcher-kva.example", 443)),
        ("*.Bücher.example:8080", Rule("*.xn--bcher-kva.example", 8080)),
    ],
)
def test_rules_parse(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 250 + ".com", "longer than 253"),
        ("a" * 64 + ".com", "not a valid host name"),
        ("-bad.example.com", "not a valid host name"),
        ("bad-.example.com", "not a valid host name"),
        ("under_score.example.com", "not a valid host name"),
        ("*", "bare *"),
        ("*:443", "bare *"),
        ("*.com", "single label"),
        ("*.com.", "single label"),
        ("api.*.example.com", "whole leftmost label"),
        ("api*.example.com", "whole leftmost label"),
        ("*api.example.com", "whole leftmost label"),
        ("*.*.example.com", "whole leftmost label"),
        ("**.example.com", "whole leftmost label"),
        ("10.0.0.1", "rules name hosts, not addresses"),
        ("8.8.8.8:443", "rules name hosts, not addresses"),
        ("2130706433", "rules name hosts, not addresses"),
        ("0x7f.1", "rules name hosts, not addresses"),
        ("*.0.0.1", "rules name hosts, not addresses"),
        ("::1", "rules name hosts, not addresses"),
        ("[::1]", "rules name hosts, not addresses"),
        ("[2001:db8::1]:8443", "rules name hosts, not addresses"),
        ("example.com:0", "port '0'"),
        ("example.com:65536", "port '65536'"),
        ("example.com:", "port ''"),
        ("example.com:https", "port 'https'"),
        ("example.com:+443", "port '+443'"),
        ("example.com:-1", "port '-1'"),
        ("localhost", "local machine"),
        ("*.internal", "private networks"),
        ("intranet", "single-label"),
        ("https://example.com", "not a URL"),
        ("example.com/hooks", "not a URL"),
    ],
)
def test_bad_rules_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as error:
        parse_rule(text)
    assert not isinstance(error.value, Refused)


RULES = [
    parse_rule("api.slack.com"),
    parse_rule("*.hubspot.com"),
    parse_rule("hooks.example.com:8443"),
]


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.slack.com", 443, True),
        ("slack.com", 443, False),
        ("x.api.slack.com", 443, False),
        ("api.slack.com.evil.com", 443, False),
        ("api.slack.com", 80, False),
        ("api.hubspot.com", 443, True),
        ("a.b.c.hubspot.com", 443, True),
        ("hubspot.com", 443, False),
        ("evilhubspot.com", 443, False),
        ("hubspot.com.evil.com", 443, False),
        ("api.hubspot.com", 8443, False),
        ("hooks.example.com", 8443, True),
        ("hooks.example.com", 443, False),
        ("other.example.com", 8443, False),
    ],
)
def test_matches(host: str, port: int, allowed: bool) -> None:
    assert matches(host, RULES, port) is allowed


def test_nothing_matches_an_empty_allowlist() -> None:
    assert not matches("api.slack.com", [], 443)


# --- resolution --------------------------------------------------------------


def test_localhost_resolves_to_loopback_which_is_refused() -> None:
    addresses = asyncio.run(resolve("localhost", 443))
    assert addresses
    assert all(address.is_loopback for address in addresses)
    assert len(addresses) == len(set(addresses))
    with pytest.raises(Refused, match="is a loopback address"):
        usable(addresses)


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(Refused, match=r"cannot resolve nonexistent\.invalid"):
        asyncio.run(resolve("nonexistent.invalid", 443))


def test_usable_keeps_public_addresses_in_order() -> None:
    addresses = [
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("2606:4700:4700::1111"),
        ipaddress.ip_address("1.1.1.1"),
    ]
    assert usable(addresses) == [addresses[1], addresses[3], addresses[4]]


def test_usable_refuses_with_the_first_reason() -> None:
    addresses = [ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(Refused, match=r"^169\.254\.169\.254 is a cloud metadata address$"):
        usable(addresses)


def test_usable_refuses_no_addresses() -> None:
    with pytest.raises(Refused):
        usable([])


def test_the_hosts_own_addresses_are_known() -> None:
    from authhooks.egress.rules import local_addresses

    own = local_addresses()
    assert ipaddress.ip_address("127.0.0.1") in own
