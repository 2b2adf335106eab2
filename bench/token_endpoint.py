"""Token endpoint throughput and latency, side by side with a peer OAuth server.

Starts ``authhooks serve`` as a user would (uvicorn, two worker processes,
access log off) and the peer (node-oidc-provider, two cluster workers), then
drives ``POST /oauth/token`` (client credentials, client_secret_post) at each
with wrk from a separate process, for a fixed duration at a fixed concurrency.
Runs authhooks with no hook, one trivial credentials-exchange hook and a flow
of three, and the peer without and with its in-process claims function.
Prints requests/s, p50 and p99 latency, and ratios measured in the same run.

With ``--subscriber``, the hooks also print one line per call, and each run with
hooks is measured on one server without and with one Server-Sent Events
subscriber reading ``/api/v2/logs/stream`` (no filter) for the whole run, in
``--subscriber-rounds`` pairs (alternating which goes first).

    python bench/token_endpoint.py [--duration 10] [--connections 16] [--algs RS256,ES256]
                                   [--hooks 0,1,3] [--languages python,node]
                                   [--subscriber] [--subscriber-rounds 2]
                                   [--subscriber-client python|curl]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "bench" / "peer" / "run"
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("BODY")
"""


HOOK = """
def credentials_exchange(client, scope, audience, context):
    return {"scope": scope, "https://example.com/tier": "gold",
            "https://example.com/client": client["id"]}
"""

# The same in JavaScript, in Auth0's Hooks convention (--languages python,node).
HOOK_JS = """
module.exports = function (client, scope, audience, context, cb) {
  cb(null, { scope, 'https://example.com/tier': 'gold', 'https://example.com/client': client.id });
};
"""

# The same, printing one short line per call: something for the log stream to carry.
HOOK_PRINTING = """
def credentials_exchange(client, scope, audience, context):
    print("token for", client["id"])
    return {"scope": scope, "https://example.com/tier": "gold",
            "https://example.com/client": client["id"]}
"""


@dataclass
class Result:
    server: str
    alg: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU the server's processes (not its hook workers) used per request: steadier
    # than throughput on a shared machine, and what a ratio of throughputs reflects.
    server_us: float = 0.0
    # CPU the hook workers (and their sandboxes' launchers) used per request.
    hooks_us: float = 0.0


@dataclass
class Streamed:
    """What one SSE subscriber got during a run with it."""

    requests: int  # completed by wrk in the measured run
    events: Counter[str] = field(default_factory=Counter)
    first_seq: int | None = None
    last_seq: int | None = None
    seq_gaps: int = 0  # records missing between the first and the last received
    out_of_order: list[tuple[int, int]] = field(default_factory=list)  # (after, seq)
    cpu_s: float = 0.0  # the reading thread's CPU time
    error: str | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: not up within {timeout} s")


@contextmanager
def running(
    command: list[str], env: dict[str, str], probe: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(probe, process)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(
    url: str, body: str, duration: int, connections: int, script: Path
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx count) from one wrk run."""
    return parse_wrk(wrk_output(url, body, duration, connections, script))


def measured_run(
    name: str, alg: str, server: int, url: str, body: str, args: argparse.Namespace, script: Path
) -> tuple[Result, str]:
    """One wrk run, with the CPU the server's processes used per request; and wrk's output."""
    before, hooks_before = process_cpu_seconds(server), hook_cpu_seconds(server)
    output = wrk_output(url, body, args.duration, args.connections, script)
    used = process_cpu_seconds(server) - before
    hooks_used = hook_cpu_seconds(server) - hooks_before
    rps, p50, p99, errors = parse_wrk(output)
    requests = max(1, _requests(output))
    per_request, hooks_per_request = 1e6 * used / requests, 1e6 * hooks_used / requests
    return Result(name, alg, rps, p50, p99, errors, per_request, hooks_per_request), output


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and its children (uvicorn's worker processes),
    but not their own children (hook workers). With one worker, uvicorn serves in
    ``pid`` itself, and the children counted are the hook workers' launchers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def hook_cpu_seconds(pid: int) -> float:
    """User and system CPU of the hook workers under ``pid``: every process below
    the server's own (``process_cpu_seconds``). A worker that exits during the run
    takes its time with it (none does in a run this short)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick

    def depth(process: int) -> int:  # 0: the server, 1: its processes, ...; -1: not below it
        steps = 0
        while process != pid:
            process = parents.get(process, 0)
            if process <= 1:
                return -1
            steps += 1
        return steps

    # Depth 1 is process_cpu_seconds' (uvicorn's workers, or with one worker the
    # sandboxes' launchers); what is deeper is the hooks'.
    return sum(t for p, t in times.items() if depth(p) > 1)


def wrk_output(url: str, body: str, duration: int, connections: int, script: Path) -> str:
    return subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        env={**os.environ, "BODY": body},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _latency(output, "50%")
    p99 = _latency(output, "99%")
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    return rps, p50, p99, errors


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bench_authhooks(
    alg: str, hooks: int, args: argparse.Namespace, script: Path, language: str = "python"
) -> list[tuple[Result, Streamed | None]]:
    """One run; with ``--subscriber`` and hooks, the rounds without and with a subscriber."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    printing = args.subscriber and hooks > 0
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AUTHHOOKS_DATA_DIR": data_dir,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_SIGNING_ALGORITHM": alg,
            "AUTHHOOKS_WORKERS": str(args.workers),
            "AUTHHOOKS_LOG_LEVEL": "warning",
        }
        if printing:
            # Heartbeats on an idle stream let the reader notice it should stop.
            env["AUTHHOOKS_LOG_STREAM_HEARTBEAT"] = "1"
        with running([sys.executable, "-m", "authhooks", "serve"], env, url + "/healthz") as server:
            hook = HOOK_JS if language == "node" else HOOK_PRINTING if printing else HOOK
            body = urlencode(setup_machine(url, Path(data_dir), hooks, hook))
            token_url = url + "/oauth/token"
            check(token_url, body)
            wrk(token_url, body, args.warmup, args.connections, script)
            if printing:
                return with_subscriber(
                    url, server.pid, Path(data_dir), alg, hooks, body, args, script
                )
            name = f"authhooks+{hooks}h" if hooks else "authhooks"
            if hooks and language == "node":
                name += "js"
            result, _ = measured_run(name, alg, server.pid, token_url, body, args, script)
    return [(result, None)]


def with_subscriber(
    url: str,
    server: int,
    data_dir: Path,
    alg: str,
    hooks: int,
    body: str,
    args: argparse.Namespace,
    script: Path,
) -> list[tuple[Result, Streamed | None]]:
    """``--subscriber-rounds`` pairs of runs, without and with one subscriber, ABBA order."""
    token = admin_token(url, data_dir)
    token_url = url + "/oauth/token"
    name = f"authhooks+{hooks}hp"
    runs: list[tuple[Result, Streamed | None]] = []
    for round_number in range(args.subscriber_rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        for subscribed in order:
            if not subscribed:
                result, _ = measured_run(name, alg, server, token_url, body, args, script)
                runs.append((result, None))
                continue
            reader = CurlSubscriber if args.subscriber_client == "curl" else LogSubscriber
            with reader(url, token) as subscriber:
                result, output = measured_run(
                    name + "+sub", alg, server, token_url, body, args, script
                )
                subscriber.drain(newest_seq(url, token))
            runs.append((result, subscriber.result(_requests(output))))
    return runs


def _requests(output: str) -> int:
    return int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]


def newest_seq(url: str, token: str) -> int:
    """The seq of the newest stored record, once the last batch has had time to be written."""
    time.sleep(0.5)  # records are written every 0.1 s
    response = httpx.get(
        url + "/api/v2/logs",
        params={"take": 1},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    logs = response.json()["logs"]
    return int(logs[0]["seq"]) if logs else 0


class EventCounter:
    """Counts a log stream's events from its raw bytes: only the ``event:`` and
    ``id:`` lines are read (the ``seq`` of each record, to find any missing),
    never the JSON, so that reading costs little."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.seq_gaps = 0
        self.out_of_order: list[tuple[int, int]] = []
        self.error: str | None = None
        self._pending = b""
        self._kind = b""
        self._event_id = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if not line:  # the end of an event (or of a comment)
                if self._kind == b"invocation":
                    self._seq(int(self._event_id))
                self._kind = self._event_id = b""
            elif line.startswith(b"event: "):
                self._kind = line[7:]
                self.events[self._kind.decode()] += 1
            elif line.startswith(b"id: "):
                self._event_id = line[4:]
            elif self._kind == b"dropped" and line.startswith(b"data: "):
                self.error = f"dropped: {line[6:].decode()}"

    def _seq(self, seq: int) -> None:
        if self.first_seq is None or self.last_seq is None:
            self.first_seq = self.last_seq = seq
        elif seq <= self.last_seq:
            self.out_of_order.append((self.last_seq, seq))
        else:
            self.seq_gaps += seq - self.last_seq - 1
            self.last_seq = seq

    def result(self, requests: int, cpu_s: float) -> Streamed:
        return Streamed(
            requests,
            self.events,
            self.first_seq,
            self.last_seq,
            self.seq_gaps,
            self.out_of_order,
            cpu_s,
            self.error,
        )


class Reader:
    """What both subscribers share: their counter, and waiting for a record."""

    def __init__(self) -> None:
        self.counter = EventCounter()
        self.cpu_s = 0.0

    def drain(self, seq: int, timeout: float = 30) -> None:
        """Wait until the record ``seq`` has been received (or the stream ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._reading():
            self._catch_up()
            if self.counter.last_seq is not None and self.counter.last_seq >= seq:
                return
            time.sleep(0.05)

    def result(self, requests: int) -> Streamed:
        return self.counter.result(requests, self.cpu_s)

    def _reading(self) -> bool:
        raise NotImplementedError

    def _catch_up(self) -> None:
        """Count what has arrived but is not counted yet."""


class LogSubscriber(Reader):
    """One reader of ``/api/v2/logs/stream`` in a thread of this process, counting
    events as they arrive (``EventCounter``)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__()
        self._url = url + "/api/v2/logs/stream"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        self._stop = threading.Event()
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> LogSubscriber:
        self._thread.start()
        if not self._open.wait(30) or self.counter.error:
            raise RuntimeError(f"log stream did not open: {self.counter.error}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _reading(self) -> bool:
        return self._thread.is_alive()

    def _read(self) -> None:
        started = time.thread_time()
        timeout = httpx.Timeout(30, read=60)
        counter = self.counter
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self._url, headers=self._headers) as response,
            ):
                if response.status_code != 200:
                    counter.error = f"status {response.status_code}"
                    return
                self._open.set()
                for chunk in response.iter_raw():
                    counter.feed(chunk)
                    if self._stop.is_set():
                        return
                counter.error = counter.error or "the server ended the stream"
        except (httpx.HTTPError, ValueError) as error:
            counter.error = f"{type(error).__name__}: {error}"
        finally:
            self.cpu_s = time.thread_time() - started
            self._open.set()


class CurlSubscriber(Reader):
    """The same reader as a ``curl`` process that only writes the stream to a file,
    parsed once the run is over: a subscriber that costs the machine close to
    nothing while the server is measured (``--subscriber-client curl``)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__()
        self._url = url + "/api/v2/logs/stream"
        self._token = token
        self._scratch = tempfile.TemporaryDirectory()
        self._output = Path(self._scratch.name) / "stream"
        self._read_upto = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CurlSubscriber:
        headers = Path(self._scratch.name) / "headers"  # the token, kept out of argv
        headers.touch(mode=0o600)
        headers.write_text(f"Authorization: Bearer {self._token}\nAccept: text/event-stream\n")
        self._process = subprocess.Popen(
            ["curl", "-sSN", "--fail", "-H", f"@{headers}", "-o", str(self._output), self._url]
        )
        deadline = time.monotonic() + 30
        while not (self._output.exists() and self._output.stat().st_size):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("log stream did not open (curl)")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        self._process.terminate()
        usage = os.wait4(self._process.pid, 0)[2]
        self._process.returncode = -signal.SIGTERM
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self._catch_up()
        self._scratch.cleanup()

    def _reading(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _catch_up(self) -> None:
        with self._output.open("rb") as stream:
            stream.seek(self._read_upto)
            chunk = stream.read()
        self._read_upto += len(chunk)
        self.counter.feed(chunk)


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


def setup_machine(url: str, data_dir: Path, hooks: int = 0, hook: str = HOOK) -> dict[str, str]:
    """An API, a client and a grant, made through the management API as an operator would."""
    token = admin_token(url, data_dir)
    with httpx.Client(
        base_url=url + "/api/v2", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        api.post(
            "/resource-servers",
            json={
                "name": "Bench API",
                "identifier": "https://api.example.com/",
                "scopes": [{"value": "read:things"}, {"value": "write:things"}],
            },
        ).raise_for_status()
        client = api.post("/clients", json={"name": "bench"}).json()
        api.post(
            "/client-grants",
            json={
                "client_id": client["client_id"],
                "audience": "https://api.example.com/",
                "scope": ["read:things", "write:things"],
            },
        ).raise_for_status()
        for n in range(hooks):
            api.post(
                "/hooks",
                json={
                    "name": f"bench-{n}",
                    "script": hook,
                    "triggerId": "credentials-exchange",
                    "enabled": True,
                    "order": n,
                },
            ).raise_for_status()
    return {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "audience": "https://api.example.com/",
        "scope": "read:things",
    }


def bench_peer(alg: str, hook: bool, args: argparse.Namespace, script: Path) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PORT": str(port),
        "ALG": alg,
        "WORKERS": str(args.workers),
        "HOOK": "1" if hook else "0",
    }
    body = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": "bench",
            "client_secret": "bench-secret-bench-secret",
            "scope": "read:things",
            "resource": "https://api.example.com/",
        }
    )
    with running([str(PEER)], env, url + "/.well-known/openid-configuration"):
        check(url + "/token", body)
        wrk(url + "/token", body, args.warmup, args.connections, script)
        rps, p50, p99, errors = wrk(url + "/token", body, args.duration, args.connections, script)
    return Result("peer+fn" if hook else "peer", alg, rps, p50, p99, errors)


def check(url: str, body: str) -> None:
    response = httpx.post(
        url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"{url}: token request failed: {response.status_code} {response.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--algs", default="RS256,ES256")
    parser.add_argument("--hooks", default="0", help="hook counts to run, e.g. 0,1,3")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer server")
    parser.add_argument(
        "--languages",
        default="python",
        help="the hooks' languages, e.g. python,node (runs with hooks are made in each)",
    )
    parser.add_argument(
        "--subscriber",
        action="store_true",
        help="hooks print a line per call; runs with hooks also measured with one log subscriber",
    )
    parser.add_argument(
        "--subscriber-client",
        choices=("python", "curl"),
        default="python",
        help="the subscriber: a thread of this process that counts events as they come, "
        "or curl writing the stream to a file that is counted after each run",
    )
    parser.add_argument(
        "--subscriber-rounds",
        type=int,
        default=2,
        help="pairs of runs without and with the subscriber, per hook count",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing: run `make bench` (installs it) or apt-get install wrk")

    results: list[Result] = []
    streamed: list[tuple[Result, Streamed | None]] = []
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(WRK_SCRIPT)
        hook_counts = [int(n) for n in args.hooks.split(",")]
        for alg in args.algs.split(","):
            for hooks in hook_counts:
                for language in args.languages.split(",") if hooks else ["python"]:
                    runs = bench_authhooks(alg, hooks, args, script, language)
                    if len(runs) == 1:
                        results.append(runs[0][0])
                    else:
                        streamed += runs
                        results += mean_of_rounds([result for result, _ in runs])
            if not args.no_peer:
                results.append(bench_peer(alg, False, args, script))
                if any(hook_counts):
                    results.append(bench_peer(alg, True, args, script))

    print(
        f"\nPOST /oauth/token, client credentials; {args.workers} server workers, "
        f"wrk -t2 -c{args.connections} -d{args.duration}s on the same {os.cpu_count()}-core machine"
    )
    if streamed:
        print(
            f"+Nhp: the N hooks print one line per call; +sub: one SSE subscriber on "
            f"/api/v2/logs/stream (no filter) for the whole run; mean of "
            f"{args.subscriber_rounds} runs each, alternating which goes first"
        )
    width = max(14, *(len(result.server) for result in results))
    print(
        f"{'server':<{width}} {'alg':<6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'server CPU us/req':>18} {'hooks CPU us/req':>17}"
    )
    for result in results:
        cpu = f"{result.server_us:.0f}" if result.server_us else "-"
        hooks = f"{result.hooks_us:.0f}" if result.hooks_us else "-"
        print(
            f"{result.server:<{width}} {result.alg:<6} {result.requests_per_s:>9.0f} "
            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.errors:>7} {cpu:>18} "
            f"{hooks:>17}"
        )
    for alg in args.algs.split(","):
        by_name = {r.server: r for r in results if r.alg == alg}
        base, peer = by_name.get("authhooks"), by_name.get("peer")
        for name, result in by_name.items():
            if base and name.startswith("authhooks+"):
                ratio = result.requests_per_s / base.requests_per_s
                added = result.p99_ms - base.p99_ms
                print(f"{alg}: {name}/authhooks throughput {ratio:.2f}, p99 added {added:+.2f} ms")
        if base and peer:
            print(
                f"{alg}: authhooks/peer throughput {base.requests_per_s / peer.requests_per_s:.2f}"
            )
        if "authhooks+1h" in by_name and "authhooks+1hjs" in by_name:
            js, python = by_name["authhooks+1hjs"], by_name["authhooks+1h"]
            ratio = js.requests_per_s / python.requests_per_s
            print(f"{alg}: a JavaScript hook / a Python hook throughput {ratio:.2f}")
        if "authhooks+1h" in by_name and "peer+fn" in by_name:
            ratio = by_name["authhooks+1h"].requests_per_s / by_name["peer+fn"].requests_per_s
            print(f"{alg}: authhooks+1h/peer+fn throughput {ratio:.2f}")
    if streamed:
        print_subscriber(streamed, args.subscriber_rounds)


def mean_of_rounds(runs: list[Result]) -> list[Result]:
    """One result per server name: the mean of its runs (errors summed)."""
    means = []
    for name in dict.fromkeys(result.server for result in runs):
        same = [result for result in runs if result.server == name]
        means.append(
            Result(
                name,
                same[0].alg,
                sum(result.requests_per_s for result in same) / len(same),
                sum(result.p50_ms for result in same) / len(same),
                sum(result.p99_ms for result in same) / len(same),
                sum(result.errors for result in same),
                sum(result.server_us for result in same) / len(same),
                sum(result.hooks_us for result in same) / len(same),
            )
        )
    return means


def print_subscriber(runs: list[tuple[Result, Streamed | None]], rounds: int) -> None:
    """Per hook count: with/without the subscriber, per round and overall; what it received."""
    print()
    groups = dict.fromkeys((result.alg, result.server.removesuffix("+sub")) for result, _ in runs)
    for alg, name in groups:
        plain = [r for r, _ in runs if r.alg == alg and r.server == name]
        subscribed = [(r, s) for r, s in runs if r.alg == alg and r.server == name + "+sub"]
        with_sub = [r for r, _ in subscribed]
        pairs = ", ".join(
            f"{b.requests_per_s / a.requests_per_s:.2f} ({b.p99_ms - a.p99_ms:+.2f} ms)"
            for a, b in zip(plain, with_sub, strict=True)
        )
        ratio = sum(r.requests_per_s for r in with_sub) / sum(r.requests_per_s for r in plain)
        added = (sum(r.p99_ms for r in with_sub) - sum(r.p99_ms for r in plain)) / rounds
        print(
            f"{alg}: {name}+sub/{name} throughput {ratio:.2f}, p99 added {added:+.2f} ms "
            f"(each round: {pairs})"
        )
        cpu_plain = sum(r.server_us for r in plain) / len(plain) or 1.0
        cpu_with = sum(r.server_us for r in with_sub) / len(with_sub)
        each = ", ".join(
            f"{b.server_us / (a.server_us or 1.0) - 1:+.1%}"
            for a, b in zip(plain, with_sub, strict=True)
        )
        print(
            f"{alg}: server CPU per request {cpu_plain:.0f} us without, {cpu_with:.0f} us with "
            f"the subscriber ({cpu_with / cpu_plain - 1:+.1%}; each round: {each})"
        )
        for result, got in subscribed:
            assert got is not None
            span = (got.last_seq - got.first_seq + 1) if got.first_seq and got.last_seq else 0
            events = ", ".join(f"{kind} {count}" for kind, count in sorted(got.events.items()))
            print(
                f"  {result.server} {result.requests_per_s:.0f} req/s: {got.requests} requests; "
                f"received {events or 'nothing'}; records seq {got.first_seq}..{got.last_seq} "
                f"({span}), {got.seq_gaps} missing; reader CPU {got.cpu_s:.2f} s"
                + (
                    f"; {len(got.out_of_order)} out of order (after, seq): {got.out_of_order[:5]}"
                    if got.out_of_order
                    else ""
                )
                + (f"; stream error: {got.error}" if got.error else "")
            )


if __name__ == "__main__":
    main()
