"""Egress broker: the latency an HTTP(S) request gains by going through it.

Starts a local HTTP server and a local HTTPS server (a certificate from a CA
made for the run) in a child process, and ``authhooks serve`` (one worker
process) with ``AUTHHOOKS_EGRESS_TEST_OVERRIDES`` sending two public-looking
names to them. Then the same ``urllib`` code — a new connection per request,
as ``urllib`` makes them; for HTTPS a full TLS handshake each time, verified
against the CA — runs two ways, for each scheme:

- direct: in this process, on the host, against ``127.0.0.1``;
- through: inside a hook, in the real sandbox, run through the runner
  (``POST /api/v2/hooks/{id}/test``): the broker's listener on the sandbox's
  loopback, its checks (call, rate, request head, allowlist) and its relay.

The hook times each request with ``time.perf_counter`` and returns the
durations as a claim. The broker allows 16 connections per call and 20 new
connections a second per hook (bursts of 40), so the requests go in batches of
at most 16 per runner call, round robin over a few hooks, paced to stay within
each hook's rate. Direct and through batches alternate, so that both see the
same machine. Prints p50/p99/mean of each and the p50 each scheme gains.

    python bench/egress.py [--requests 500] [--per-call 16] [--hooks 12] [--warmup-rounds 2]
                            [--body 64]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import platform
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PLAIN = "plain.bench.example"  # the names hooks use; the overrides send them to 127.0.0.1
SECURE = "secure.bench.example"
CLAIM = "https://bench.example/ms"
# The broker's limits (egress/broker.py, EgressLimits).
CONNECTIONS_PER_CALL = 16
RATE_PER_SECOND = 20.0
RATE_BURST = 40

# What both paths run: in this process (exec) and, pasted, in the hook.
REQUESTS = '''
import time
import urllib.request


def timed(url, count, tls, expected):
    """Milliseconds each of ``count`` GETs of ``url`` took, a new connection each."""
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls))
    took = []
    for _ in range(count):
        began = time.perf_counter()
        with opener.open(url, timeout=5) as answer:
            body = answer.read()
        took.append((time.perf_counter() - began) * 1000)
        if len(body) != expected:
            raise RuntimeError(f"{len(body)} bytes of body, not {expected}")
    return took
'''

HOOK = (
    REQUESTS
    + f'''
import ssl
import sys


def credentials_exchange(client, scope, audience, context):
    secrets = context["secrets"]
    if "URL" not in secrets:
        return {{"https://bench.example/python": [sys.version, ssl.OPENSSL_VERSION]}}
    tls = ssl.create_default_context(cadata=secrets["CA"])
    took = timed(secrets["URL"], int(secrets["COUNT"]), tls, int(secrets["BODY"]))
    return {{"{CLAIM}": took}}
'''
)

EGRESS_LINE = re.compile(
    r"egress (\S+) (\S+):(\d+) -> (\S+): (\d+) bytes out, (\d+) bytes in, \d+ ms(?: \((.*)\))?$"
)


# --- the local servers (a child process) --------------------------------------------------


def answer(body_bytes: int) -> bytes:
    """The one answer both servers give: a fixed head and ``body_bytes`` of body."""
    body = b"x" * body_bytes
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def serve(cert: str, key: str, body_bytes: int) -> None:
    """Run the two servers until stdin closes; then print what they served."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    response = answer(body_bytes)
    counts = {"http": [0, 0], "https": [0, 0]}  # served, failed

    def loop(listener: socket.socket, scheme: str) -> None:
        # One connection at a time: the requests are sequential.
        while True:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                if scheme == "https":
                    connection = tls.wrap_socket(connection, server_side=True)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = connection.recv(65536)
                    if not data:
                        raise ConnectionError("closed before a full request head")
                    head += data
                connection.sendall(response)
                counts[scheme][0] += 1
            except (OSError, ssl.SSLError):
                counts[scheme][1] += 1
            finally:
                connection.close()

    ports = {}
    for scheme in counts:
        listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        ports[scheme] = listener.getsockname()[1]
        threading.Thread(target=loop, args=(listener, scheme), daemon=True).start()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    print(json.dumps(counts), flush=True)


@dataclass
class Servers:
    http: int
    https: int
    process: subprocess.Popen[str]

    def finish(self) -> dict[str, list[int]]:
        """Stop the servers: {scheme: [served, failed]}."""
        output, _ = self.process.communicate(timeout=30)
        counts: dict[str, list[int]] = json.loads(output.strip().splitlines()[-1])
        return counts


@contextmanager
def local_servers(directory: Path, body_bytes: int) -> Iterator[tuple[Servers, str]]:
    """The two servers, and the PEM of the CA that signed the HTTPS one's certificate."""
    ca, cert, key = certificate_authority(directory)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(cert), str(key), str(body_bytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield Servers(ports["http"], ports["https"], process), ca
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def certificate_authority(directory: Path) -> tuple[str, Path, Path]:
    """(the CA's PEM, the server's certificate and key files): the certificate names
    both SECURE (through the broker) and 127.0.0.1 (direct)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authhooks bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(SECURE), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SECURE)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file


# --- authhooks ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def authhooks(data_dir: Path, overrides: str) -> Iterator[str]:
    """``authhooks serve`` (one worker process, access log off); its URL. Its output
    goes to ``<data_dir>.log``, shown if it fails to start."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AUTHHOOKS_DATA_DIR": str(data_dir),
        "AUTHHOOKS_PORT": str(port),
        "AUTHHOOKS_WORKERS": "1",
        "AUTHHOOKS_LOG_LEVEL": "warning",
        "AUTHHOOKS_EGRESS_TEST_OVERRIDES": overrides,
    }
    env.pop("AUTHHOOKS_CONFIG", None)
    log = data_dir.with_suffix(".log")
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "authhooks", "serve"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"authhooks exited with {process.returncode}:\n{log.read_text()}"
                )
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("authhooks is not up within 120 s") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def admin_token(url: str, data_dir: Path) -> str:
    """A management API token for the bootstrap admin (every scope)."""
    admin = json.loads((data_dir / "bootstrap-admin.json").read_text())
    response = httpx.post(
        url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": admin["client_id"],
            "client_secret": admin["client_secret"],
            "audience": admin["audience"],
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


class Pace:
    """This bench's model of one hook's token bucket in the broker, so that no
    connection is refused for the rate. It never has more tokens than the broker:
    both start full (the broker's at the hook's first connection), refill alike, and
    the model counts a call's connections as taken when the call starts and its
    refill only from when the call ends."""

    def __init__(self) -> None:
        self.tokens, self.at = float(RATE_BURST), time.monotonic()
        self.waited = 0.0

    def _now(self) -> float:
        return min(RATE_BURST, self.tokens + (time.monotonic() - self.at) * RATE_PER_SECOND)

    def wait(self, count: int) -> None:
        """Before a call: wait until the broker surely allows ``count`` connections."""
        short = count + 1 - self._now()
        if short > 0:
            time.sleep(short / RATE_PER_SECOND)
            self.waited += short / RATE_PER_SECOND
        self.tokens, self.at = self._now() - count, time.monotonic()

    def ended(self) -> None:
        """After the call: refill from now on."""
        self.at = time.monotonic()


@dataclass
class Egress:
    """What the invocation logs of the through runs say about their connections."""

    connections: int = 0
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes_out: list[int] = field(default_factory=list)
    bytes_in: list[int] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # egress lines of no known shape


@dataclass
class Hook:
    id: str
    pace: Pace = field(default_factory=Pace)


class Through:
    """Requests run inside hooks through the runner."""

    def __init__(self, api: httpx.Client, hooks: list[Hook], ca: str, body_bytes: int) -> None:
        self.api, self.hooks, self.ca, self.body_bytes = api, hooks, ca, body_bytes
        self.egress = {"http": Egress(), "https": Egress()}
        self.calls = 0

    def run(self, hook: Hook, secrets: dict[str, str]) -> Any:
        """The runner's report of one call of ``hook``'s deployed version."""
        response = self.api.post(f"/hooks/{hook.id}/test", json={"secrets": secrets}, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"runner: {response.status_code} {response.text}")
        report = response.json()
        if report["outcome"] != "ok":
            console = "\n".join(line["text"] for line in report["console"])
            raise RuntimeError(f"hook call failed: {report['error']}\n{console}")
        return report

    def timed(self, hook: Hook, scheme: str, url: str, count: int) -> list[float]:
        secrets = {"URL": url, "COUNT": str(count), "CA": self.ca, "BODY": str(self.body_bytes)}
        hook.pace.wait(count)
        try:
            report = self.run(hook, secrets)
        finally:
            hook.pace.ended()
        self.calls += 1
        self.check_egress(scheme, report["console"])
        took: list[float] = report["result"]["claims"][CLAIM]
        if len(took) != count:
            raise RuntimeError(f"the hook returned {len(took)} durations, not {count}")
        return took

    def check_egress(self, scheme: str, console: list[dict[str, Any]]) -> None:
        egress = self.egress[scheme]
        for line in console:
            if line["stream"] != "egress":
                continue
            text = line["text"]
            egress.connections += 1
            found = EGRESS_LINE.match(text)
            if "refused" in text and not found:
                egress.refused.append(text)
            elif not found:
                egress.other.append(text)
            else:
                egress.bytes_out.append(int(found.group(5)))
                egress.bytes_in.append(int(found.group(6)))
                if found.group(7):
                    egress.notes.append(text)


def setup_hooks(api: httpx.Client, count: int, ports: Servers) -> list[Hook]:
    hooks = []
    for n in range(count):
        created = api.post(
            "/hooks",
            json={
                "name": f"egress-bench-{n}",
                "script": HOOK,
                "triggerId": "credentials-exchange",
                "timeout_ms": 20_000,
                "egress": [f"{PLAIN}:{ports.http}", f"{SECURE}:{ports.https}"],
            },
        )
        if created.status_code != 201:
            raise RuntimeError(f"creating a hook: {created.status_code} {created.text}")
        hooks.append(Hook(created.json()["id"]))
    return hooks


# --- the measurement ------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def batches(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured, per scheme and path")
    parser.add_argument(
        "--per-call",
        type=int,
        default=CONNECTIONS_PER_CALL,
        help=f"requests per runner call (the broker allows {CONNECTIONS_PER_CALL})",
    )
    parser.add_argument("--hooks", type=int, default=12, help="hooks to spread the calls over")
    parser.add_argument(
        "--warmup-rounds", type=int, default=2, help="unmeasured calls per hook and scheme first"
    )
    parser.add_argument("--body", type=int, default=64, help="bytes of body in each answer")
    args = parser.parse_args()
    if not 1 <= args.per_call <= CONNECTIONS_PER_CALL:
        parser.error(f"--per-call must be 1 to {CONNECTIONS_PER_CALL}")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)  # direct means direct

    shared: dict[str, Any] = {}
    exec(REQUESTS, shared)  # noqa: S102 - our own code, the very text the hook runs
    timed = shared["timed"]

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with local_servers(directory, args.body) as (ports, ca):
            overrides = f"{PLAIN}=127.0.0.1:{ports.http},{SECURE}=127.0.0.1:{ports.https}"
            data_dir = directory / "data"
            with authhooks(data_dir, overrides) as url:
                token = admin_token(url, data_dir)
                with httpx.Client(
                    base_url=url + "/api/v2", headers={"Authorization": f"Bearer {token}"}
                ) as api:
                    hooks = setup_hooks(api, args.hooks, ports)
                    through = Through(api, hooks, ca, args.body)
                    sandbox_python = through.run(hooks[0], {})["result"]["claims"][
                        "https://bench.example/python"
                    ]
                    tls = ssl.create_default_context(cadata=ca)
                    direct_urls = {
                        "http": f"http://127.0.0.1:{ports.http}/bench",
                        "https": f"https://127.0.0.1:{ports.https}/bench",
                    }
                    through_urls = {
                        "http": f"http://{PLAIN}:{ports.http}/bench",
                        "https": f"https://{SECURE}:{ports.https}/bench",
                    }
                    samples: dict[tuple[str, str], list[float]] = {
                        (scheme, path): []
                        for scheme in ("http", "https")
                        for path in ("direct", "through")
                    }
                    started = time.monotonic()
                    rounds = [args.per_call] * (args.hooks * args.warmup_rounds)
                    measured = batches(args.requests, args.per_call)
                    for n, count in enumerate(rounds + measured):
                        warm = n < len(rounds)
                        hook = hooks[n % len(hooks)]
                        for scheme in ("http", "https"):
                            direct = timed(direct_urls[scheme], count, tls, args.body)
                            via = through.timed(hook, scheme, through_urls[scheme], count)
                            if not warm:
                                samples[scheme, "direct"] += direct
                                samples[scheme, "through"] += via
                    elapsed = time.monotonic() - started
            served = ports.finish()

    per_path = len(rounds) * args.per_call + args.requests  # requests per scheme and path
    print(
        f"\n{args.requests} GETs per scheme and path, sequential, a new connection each "
        f"({args.body} bytes of body); through: {len(measured)} runner calls of up to "
        f"{args.per_call}, over {args.hooks} hooks; after {len(rounds)} unmeasured calls "
        f"(and as many direct batches) per scheme; {os.cpu_count()} CPUs"
    )
    print(
        f"direct: this process, Python {platform.python_version()}, {ssl.OPENSSL_VERSION}; "
        f"through: the sandbox's Python {sandbox_python[0].split()[0]}, {sandbox_python[1]}"
    )
    print(f"{'scheme':<7}{'path':<9}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for (scheme, path), took in samples.items():
        print(
            f"{scheme:<7}{path:<9}{len(took):>6}{percentile(took, 0.5):>9.3f}"
            f"{percentile(took, 0.99):>9.3f}{statistics.fmean(took):>9.3f}"
        )
    for scheme in ("http", "https"):
        added = percentile(samples[scheme, "through"], 0.5) - percentile(
            samples[scheme, "direct"], 0.5
        )
        mean_added = statistics.fmean(samples[scheme, "through"]) - statistics.fmean(
            samples[scheme, "direct"]
        )
        verdict = "met" if added <= 1.0 else "NOT met"
        print(
            f"{scheme}: added p50 {added:+.3f} ms (mean {mean_added:+.3f} ms); "
            f"target <= 1 ms: {verdict}"
        )

    waited = sum(hook.pace.waited for hook in hooks)
    print(
        f"\n{through.calls} runner calls in {elapsed:.1f} s, of which {waited:.1f} s waiting "
        f"for the hooks' rate ({RATE_PER_SECOND:.0f}/s, bursts of {RATE_BURST})"
    )
    print(
        "servers, served/failed: "
        + ", ".join(f"{scheme} {ok}/{failed}" for scheme, (ok, failed) in served.items())
        + f" (expected {2 * per_path}/0 each: warm-up and measured, both paths)"
    )
    sent = len(answer(args.body))
    for scheme, egress in through.egress.items():
        print(
            f"egress log, {scheme}: {egress.connections} connections for {per_path} requests; "
            f"bytes out {spread(egress.bytes_out)}, bytes in {spread(egress.bytes_in)}"
            + (f" (the server sent {sent} each)" if scheme == "http" else "")
            + f"; refused {len(egress.refused)}, notes {len(egress.notes)}, "
            f"unparsed {len(egress.other)}"
        )
        for text in (egress.refused + egress.notes + egress.other)[:5]:
            print(f"  {text}")


def spread(values: list[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}..{high}"


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
