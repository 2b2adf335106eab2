"""Token endpoint throughput and latency, side by side with a peer OAuth server.

Starts ``authhooks serve`` as a user would (uvicorn, two worker processes,
access log off) and the peer (node-oidc-provider, two cluster workers), then
drives ``POST /oauth/token`` (client credentials, client_secret_post) at each
with wrk from a separate process, for a fixed duration at a fixed concurrency.
Runs authhooks with no hook, one trivial credentials-exchange hook and a flow
of three, and the peer without and with its in-process claims function.
Prints requests/s, p50 and p99 latency, and ratios measured in the same run.

    python bench/token_endpoint.py [--duration 10] [--connections 16] [--algs RS256,ES256]
                                   [--hooks 0,1,3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class Result:
    server: str
    alg: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


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
def running(command: list[str], env: dict[str, str], probe: str) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(probe, process)
        yield
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
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        env={**os.environ, "BODY": body},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
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


def bench_authhooks(alg: str, hooks: int, args: argparse.Namespace, script: Path) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AUTHHOOKS_DATA_DIR": data_dir,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_SIGNING_ALGORITHM": alg,
            "AUTHHOOKS_WORKERS": str(args.workers),
            "AUTHHOOKS_LOG_LEVEL": "warning",
        }
        with running([sys.executable, "-m", "authhooks", "serve"], env, url + "/healthz"):
            body = urlencode(setup_machine(url, Path(data_dir), hooks))
            token_url = url + "/oauth/token"
            check(token_url, body)
            wrk(token_url, body, args.warmup, args.connections, script)
            rps, p50, p99, errors = wrk(token_url, body, args.duration, args.connections, script)
    name = f"authhooks+{hooks}h" if hooks else "authhooks"
    return Result(name, alg, rps, p50, p99, errors)


def setup_machine(url: str, data_dir: Path, hooks: int = 0) -> dict[str, str]:
    """An API, a client and a grant, made through the management API as an operator would."""
    import json

    admin = json.loads((data_dir / "bootstrap-admin.json").read_text())
    token = httpx.post(
        url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": admin["client_id"],
            "client_secret": admin["client_secret"],
            "audience": admin["audience"],
        },
    ).json()
    with httpx.Client(
        base_url=url + "/api/v2", headers={"Authorization": f"Bearer {token['access_token']}"}
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
                    "script": HOOK,
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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing: run `make bench` (installs it) or apt-get install wrk")

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(WRK_SCRIPT)
        hook_counts = [int(n) for n in args.hooks.split(",")]
        for alg in args.algs.split(","):
            for hooks in hook_counts:
                results.append(bench_authhooks(alg, hooks, args, script))
            if not args.no_peer:
                results.append(bench_peer(alg, False, args, script))
                if any(hook_counts):
                    results.append(bench_peer(alg, True, args, script))

    print(
        f"\nPOST /oauth/token, client credentials; {args.workers} server workers, "
        f"wrk -t2 -c{args.connections} -d{args.duration}s on the same {os.cpu_count()}-core machine"
    )
    print(f"{'server':<14} {'alg':<6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for result in results:
        print(
            f"{result.server:<14} {result.alg:<6} {result.requests_per_s:>9.0f} "
            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.errors:>7}"
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
        if "authhooks+1h" in by_name and "peer+fn" in by_name:
            ratio = by_name["authhooks+1h"].requests_per_s / by_name["peer+fn"].requests_per_s
            print(f"{alg}: authhooks+1h/peer+fn throughput {ratio:.2f}")


if __name__ == "__main__":
    main()
