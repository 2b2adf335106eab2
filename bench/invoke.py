"""What invoking a declared point costs, against what a hook costs the token endpoint.

Starts two ``authhooks serve`` as a user would (uvicorn, two worker processes
each, access log off, SQLite), alike but for one trivial credentials-exchange
hook enabled on the second. On the first: a blocking point with one trivial
Python hook, and one without hooks; an application granted their
``invoke:points:<id>`` scopes alone (its token fetched once, as
authhooks.client keeps it); an API and a machine client, as on the second.
Then measures these kinds of request:

- ``healthz``: ``GET /healthz``, the bare route (FastAPI's app, its middleware
  and routing, nothing else);
- ``invoke+0h`` and ``invoke+1h``: ``POST /api/v2/points/{id}/invoke`` (bearer
  token, JSON event checked against the schema) of the point without and with
  its hook;
- ``invoke-401``, ``invoke-403``, ``invoke-400``: the same route stopped at each
  stage, for where the time goes: without a token; with a token that lacks the
  point's scope (verified, its client and grant read); with an event the schema
  refuses (every dependency and the body resolved, the event checked);
- ``token`` and ``token+1h``: ``POST /oauth/token`` (client credentials) on the
  first server and on the second, whose flow is the hook.

Two ways: wrk from a separate process at a fixed concurrency for a fixed
duration, each kind in turn, in rounds (requests/s, p50 and p99, the CPU the
servers used per request); then requests sent one at a time, the kinds taking
turns in blocks (``--sequential`` of each), the CPU each block cost every
process of its server read from ``/proc/<pid>/task/*/schedstat`` (nanoseconds):
taking turns puts every kind under the same load from whatever else the machine
runs, and one request at a time shows each request's own wake-ups, which a
loaded server spreads over many.

The overheads compared: the point machinery's (invoke+1h against healthz) and
the credentials-exchange hook's (token+1h against token). The target: the first
within 1.2 times the second.

    python bench/invoke.py [--duration 5] [--warmup 2] [--rounds 2] [--connections 16]
                           [--workers 2] [--alg RS256] [--sequential 1000] [--block 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlencode

import httpx

from token_endpoint import (
    HOOK,
    _requests,
    admin_token,
    free_port,
    hook_cpu_seconds,
    parse_wrk,
    process_cpu_seconds,
    running,
)

API = "https://bench-api.example.com/"
KINDS = (
    "healthz",
    "invoke-401",
    "invoke-403",
    "invoke-400",
    "invoke+0h",
    "invoke+1h",
    "token",
    "token+1h",
)
WRK_SCRIPT = """wrk.method = os.getenv("METHOD")
local body = os.getenv("BODY")
if body ~= nil and body ~= "" then wrk.body = body end
local content_type = os.getenv("CONTENT_TYPE")
if content_type ~= nil and content_type ~= "" then wrk.headers["Content-Type"] = content_type end
local authorization = os.getenv("AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
"""

EVENT_SCHEMA = {
    "type": "object",
    "required": ["sku", "quantity"],
    "properties": {
        "sku": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
    },
}
RESULT_SCHEMA = {
    "type": "object",
    "properties": {"price": {"type": "number", "minimum": 0}},
    "additionalProperties": False,
}
EVENT = {"event": {"sku": "SKU-1", "quantity": 3}}
BAD_EVENT = {"event": {"sku": "SKU-1", "quantity": 0}}

# As trivial as the token bench's hook (HOOK): one dict built and returned.
POINT_HOOK = """
def bench_quote(event, context):
    return {"price": 12.5 * event["quantity"]}
"""


@dataclass(frozen=True)
class Target:
    """One kind of request, and the server (its process id) that answers it."""

    name: str
    server: int
    url: str
    method: str = "GET"
    body: str = ""
    content_type: str = ""
    authorization: str = ""
    expect: int = 200  # the status every answer has

    def headers(self) -> dict[str, str]:
        found = {"Authorization": self.authorization} if self.authorization else {}
        if self.content_type:
            found["Content-Type"] = self.content_type
        return found


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_us: float  # CPU of the server's processes per request, under wrk
    hooks_us: float  # CPU of its hook workers per request, under wrk

    @property
    def machine_us(self) -> float:
        """Wall time per request with the machine saturated: what each costs all of it."""
        return 1e6 / self.requests_per_s

    @property
    def cpu_us(self) -> float:
        return self.server_us + self.hooks_us


@dataclass
class Sequential:
    """CPU of a server's processes (hook workers included) over requests sent one at a time."""

    requests: int = 0
    cpu_ns: int = 0
    blocks: list[float] = field(default_factory=list)  # us per request, each block

    @property
    def us(self) -> float:
        return self.cpu_ns / 1000 / max(1, self.requests)


# --- the servers ---------------------------------------------------------------------


@contextmanager
def serve(args: argparse.Namespace, *, token_hook: bool) -> Iterator[dict[str, Target]]:
    """A server set up for the bench; the kinds of request it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AUTHHOOKS_DATA_DIR": data_dir,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_SIGNING_ALGORITHM": args.alg,
            "AUTHHOOKS_WORKERS": str(args.workers),
            "AUTHHOOKS_LOG_LEVEL": "warning",
        }
        with running([sys.executable, "-m", "authhooks", "serve"], env, url + "/healthz") as server:
            yield set_up(url, Path(data_dir), server.pid, token_hook)


def set_up(url: str, data_dir: Path, pid: int, token_hook: bool) -> dict[str, Target]:
    """The points, their hook, the application; the API, its client, and the
    credentials-exchange hook when asked: as an operator makes them."""
    with httpx.Client(
        base_url=url + "/api/v2",
        headers={"Authorization": f"Bearer {admin_token(url, data_dir)}"},
        timeout=120,
    ) as api:
        for point_id, hooks in (("bench-quote", [POINT_HOOK]), ("bench-empty", [])):
            api.post(
                "/points",
                json={
                    "id": point_id,
                    "description": "A quote, for the bench",
                    "blocking": True,
                    "event_schema": EVENT_SCHEMA,
                    "result_schema": RESULT_SCHEMA,
                },
            ).raise_for_status()
            for script in hooks:
                api.post(
                    "/hooks",
                    json={
                        "name": point_id,
                        "triggerId": point_id,
                        "script": script,
                        "enabled": True,
                    },
                ).raise_for_status()
        app = api.post("/clients", json={"name": "storefront"}).json()
        api.post(
            "/client-grants",
            json={
                "client_id": app["client_id"],
                "audience": url + "/api/v2/",
                "scope": ["invoke:points:bench-quote", "invoke:points:bench-empty"],
            },
        ).raise_for_status()
        api.post(
            "/resource-servers",
            json={"name": "Bench API", "identifier": API, "scopes": [{"value": "read:things"}]},
        ).raise_for_status()
        machine = api.post("/clients", json={"name": "bench-machine"}).json()
        api.post(
            "/client-grants",
            json={"client_id": machine["client_id"], "audience": API, "scope": ["read:things"]},
        ).raise_for_status()
        if token_hook:
            api.post(
                "/hooks",
                json={
                    "name": "bench-claims",
                    "triggerId": "credentials-exchange",
                    "script": HOOK,
                    "enabled": True,
                },
            ).raise_for_status()
    app_token = httpx.post(
        url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "audience": url + "/api/v2/",
        },
    )
    app_token.raise_for_status()
    bearer = f"Bearer {app_token.json()['access_token']}"
    event = json.dumps(EVENT)
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": machine["client_id"],
            "client_secret": machine["client_secret"],
            "audience": API,
            "scope": "read:things",
        }
    )
    invoke = f"{url}/api/v2/points/%s/invoke"
    json_type, form_type = "application/json", "application/x-www-form-urlencoded"
    quote = invoke % "bench-quote"
    return {
        "healthz": Target("healthz", pid, url + "/healthz"),
        # The same route stopped at each stage, for where the time goes: no token;
        # a token without the point's scope; an event the schema refuses.
        "invoke-401": Target("invoke-401", pid, quote, "POST", event, json_type, "", 401),
        "invoke-403": Target(
            "invoke-403", pid, invoke % "bench-ungranted", "POST", event, json_type, bearer, 403
        ),
        "invoke-400": Target(
            "invoke-400", pid, quote, "POST", json.dumps(BAD_EVENT), json_type, bearer, 400
        ),
        "invoke+0h": Target(
            "invoke+0h", pid, invoke % "bench-empty", "POST", event, json_type, bearer
        ),
        "invoke+1h": Target("invoke+1h", pid, quote, "POST", event, json_type, bearer),
        "token": Target("token", pid, url + "/oauth/token", "POST", form, form_type),
    }


# --- wrk -----------------------------------------------------------------------------


def drive(target: Target, seconds: int, connections: int, script: Path) -> str:
    env = {
        **os.environ,
        "METHOD": target.method,
        "BODY": target.body,
        "CONTENT_TYPE": target.content_type,
        "AUTHORIZATION": target.authorization,
    }
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    return subprocess.run(
        [*command, target.url], env=env, capture_output=True, text=True, check=True
    ).stdout


def measure(target: Target, args: argparse.Namespace, script: Path) -> Result:
    before, hooks_before = process_cpu_seconds(target.server), hook_cpu_seconds(target.server)
    output = drive(target, args.duration, args.connections, script)
    used = process_cpu_seconds(target.server) - before
    hooks_used = hook_cpu_seconds(target.server) - hooks_before
    rps, p50, p99, errors = parse_wrk(output)
    requests = max(1, _requests(output))
    return Result(
        target.name, rps, p50, p99, errors, 1e6 * used / requests, 1e6 * hooks_used / requests
    )


# --- one request at a time -------------------------------------------------------------


def tree_cpu_ns(root: int) -> int:
    """CPU time so far of ``root`` and every process below it (uvicorn's workers,
    the hook workers and their launchers), every thread, in nanoseconds."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError):
                continue  # gone meanwhile
    below = {root}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in below} - below
        below |= found
        grew = bool(found)
    total = 0
    for pid in below:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total


def interleaved(targets: dict[str, Target], count: int, block: int) -> dict[str, Sequential]:
    """``count`` requests of each kind, one at a time, in blocks of ``block`` taking
    turns, each block's CPU read from its server's processes."""
    found = {name: Sequential() for name in targets}
    clients = {
        name: httpx.Client(headers=target.headers(), timeout=30) for name, target in targets.items()
    }
    try:
        for name, target in targets.items():  # connections open, workers warm
            send(clients[name], target)
        for _ in range(max(1, count // block)):
            for name, target in targets.items():
                before = tree_cpu_ns(target.server)
                for _ in range(block):
                    send(clients[name], target)
                used = tree_cpu_ns(target.server) - before
                found[name].requests += block
                found[name].cpu_ns += used
                found[name].blocks.append(used / 1000 / block)
    finally:
        for client in clients.values():
            client.close()
    return found


def send(client: httpx.Client, target: Target) -> httpx.Response:
    return client.request(target.method, target.url, content=target.body.encode() or None)


def check(target: Target) -> None:
    with httpx.Client(headers=target.headers(), timeout=30) as client:
        response = send(client, target)
    if response.status_code != target.expect:
        raise RuntimeError(f"{target.name}: {response.status_code} {response.text}")


# --- the run -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="wrk runs of each kind, in turn (0: none)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--alg", default="RS256", help="the servers' signing algorithm")
    parser.add_argument(
        "--sequential", type=int, default=1000, help="requests of each kind one at a time (0: none)"
    )
    parser.add_argument("--block", type=int, default=100, help="requests per interleaved block")
    args = parser.parse_args()
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing: run `scripts/setup.sh dev wrk` or apt-get install wrk")

    runs: dict[str, list[Result]] = {}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        script = scratch / "request.lua"
        script.write_text(WRK_SCRIPT)
        plain = stack.enter_context(serve(args, token_hook=False))
        hooked = stack.enter_context(serve(args, token_hook=True))
        targets = {**plain, "token+1h": replace(hooked["token"], name="token+1h")}
        for target in targets.values():
            check(target)
        for _ in range(args.rounds):
            for name, target in targets.items():
                drive(target, args.warmup, args.connections, script)
                runs.setdefault(name, []).append(measure(target, args, script))
        sequential = interleaved(targets, args.sequential, args.block) if args.sequential else {}
    report(runs, sequential, args, load)


def mean(results: list[Result]) -> Result:
    return Result(
        results[0].name,
        statistics.fmean(r.requests_per_s for r in results),
        statistics.fmean(r.p50_ms for r in results),
        statistics.fmean(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.fmean(r.server_us for r in results),
        statistics.fmean(r.hooks_us for r in results),
    )


def report(
    runs: dict[str, list[Result]],
    sequential: dict[str, Sequential],
    args: argparse.Namespace,
    load: str,
) -> None:
    print(
        f"\n{args.alg}; {args.workers} server workers each; wrk -t2 -c{args.connections} "
        f"-d{args.duration}s, mean of {args.rounds} runs of each kind; {args.sequential} "
        f"sequential requests of each kind in blocks of {args.block}; the same "
        f"{os.cpu_count()}-core machine; load average before: {load}"
    )
    print(
        f"{'kind':<10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'us/req':>7} "
        f"{'CPU us/req':>10} {'(hooks)':>7} {'sequential CPU us/req':>22} {'(block median)':>14}"
    )
    means = {name: mean(results) for name, results in runs.items()}
    # A kind not run with wrk (--rounds 0): no time of its own, nothing added.
    empty = Result("", float("inf"), 0.0, 0.0, 0, 0.0, 0.0)
    for name in KINDS:
        result = means.get(name, empty)
        alone = sequential.get(name)
        print(
            f"{name:<10} {result.requests_per_s:>7.0f} {result.p50_ms:>7.2f} "
            f"{result.p99_ms:>7.2f} {result.errors:>6} {result.machine_us:>7.0f} "
            f"{result.cpu_us:>10.0f} {result.hooks_us:>7.0f} "
            f"{alone.us if alone else 0:>22.0f} "
            f"{statistics.median(alone.blocks) if alone else 0:>14.0f}"
        )
    each = ", ".join(
        f"{name} " + "/".join(f"{r.requests_per_s:.0f}" for r in results)
        for name, results in runs.items()
    )
    print(f"req/s of each run: {each}")
    print("(the invoke-4xx kinds answer 401, 403 and 400 by design: wrk counts them as errors)")
    print("\nper request: machine time (1/throughput), CPU under wrk, CPU one at a time; p99 added")

    def seq(name: str) -> float:
        return sequential[name].us if name in sequential else 0.0

    def overhead(label: str, more: str, base: str) -> tuple[float, float, float]:
        high, low = means.get(more, empty), means.get(base, empty)
        found = (
            high.machine_us - low.machine_us,
            high.cpu_us - low.cpu_us,
            seq(more) - seq(base),
        )
        print(
            f"{label:<52} {found[0]:>6.0f} us {found[1]:>6.0f} us {found[2]:>6.0f} us "
            f"{high.p99_ms - low.p99_ms:+8.2f} ms"
        )
        return found

    point = overhead("point machinery (invoke+1h - healthz)", "invoke+1h", "healthz")
    overhead("  without its hook (invoke+0h - healthz)", "invoke+0h", "healthz")
    overhead("    the API's route, no token (invoke-401 - healthz)", "invoke-401", "healthz")
    overhead("    token verified, grant read (-403 - -401)", "invoke-403", "invoke-401")
    overhead("    dependencies, body, event schema (-400 - -403)", "invoke-400", "invoke-403")
    overhead("    an empty flow, the answer (+0h - -400)", "invoke+0h", "invoke-400")
    overhead("  its hook (invoke+1h - invoke+0h)", "invoke+1h", "invoke+0h")
    hook = overhead("credentials-exchange hook (token+1h - token)", "token+1h", "token")
    ratios = [f"{p / h:.2f}" if h > 0 else "-" for p, h in zip(point, hook, strict=True)]
    print(
        f"point machinery / credentials-exchange hook: {ratios[0]} by machine time, "
        f"{ratios[1]} by CPU under wrk, {ratios[2]} by sequential CPU (target: at most 1.20)"
    )


if __name__ == "__main__":
    main()
