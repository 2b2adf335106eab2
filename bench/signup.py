"""Signups and password logins per second, and post-registration delivery lag.

Starts ``authhooks serve`` as a user would (uvicorn, two worker processes,
access log off, SQLite), creates an app, an API and the hooks through the
management API, and drives ``POST /dbconnections/signup`` (JSON) and
``POST /oauth/token`` (``grant_type=password``, form) with concurrent asyncio
tasks (httpx) for a fixed duration each: first without hooks, then with a
trivial pre-user-registration hook, a post-user-registration hook and a
password-exchange hook. Then, on a second server with cheap argon2 parameters,
fires a burst of signups with a post-user-registration hook enabled and polls
the hook's deliveries until every one is delivered.

    python bench/signup.py [--duration 10] [--concurrency 8] [--workers 2]
                           [--argon2 3,65536,4] [--burst 1000]
                           [--burst-concurrency 16] [--burst-argon2 1,8192,1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher, Type

from token_endpoint import free_port, running

PASSWORD = "Correct-Horse-42"
AUDIENCE = "https://bench-api.example.com/"

PRE_REGISTRATION = """
def pre_user_registration(user, context):
    return {"user": {"app_metadata": {"plan": "free"}}}
"""

POST_REGISTRATION = """
def post_user_registration(user, context):
    return user["id"]
"""

PASSWORD_EXCHANGE = """
def password_exchange(user, client, scope, audience, context):
    return {"scope": scope, "https://example.com/plan": user["app_metadata"].get("plan", "none")}
"""

# One request, made by one of the concurrent tasks.
Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Argon2:
    time_cost: int
    memory_cost: int  # KiB
    parallelism: int

    @classmethod
    def parse(cls, text: str) -> Argon2:
        t, m, p = (int(part) for part in text.split(","))
        return cls(t, m, p)

    def env(self) -> dict[str, str]:
        return {
            "AUTHHOOKS_ARGON2_TIME_COST": str(self.time_cost),
            "AUTHHOOKS_ARGON2_MEMORY_COST": str(self.memory_cost),
            "AUTHHOOKS_ARGON2_PARALLELISM": str(self.parallelism),
        }

    def __str__(self) -> str:
        return f"argon2id t={self.time_cost} m={self.memory_cost} KiB p={self.parallelism}"


@dataclass
class Run:
    name: str
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_s(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True)
class Server:
    url: str
    api: httpx.Client  # the management API, with an admin token


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


# --- the server and what is set up in it -------------------------------------------------


@contextmanager
def serve(workers: int, argon2: Argon2) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            **argon2.env(),
            "AUTHHOOKS_DATA_DIR": data_dir,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_WORKERS": str(workers),
            "AUTHHOOKS_LOG_LEVEL": "warning",
            # Every login here succeeds; should one fail, it must show as an error,
            # not turn the rest of the run into 429s.
            "AUTHHOOKS_LOGIN_MAX_FAILURES_PER_IP": "1000000",
            "AUTHHOOKS_SIGNUP_MAX_PER_IP": "1000000",
            "AUTHHOOKS_LOGIN_MAX_FAILURES_PER_USER": "1000000",
        }
        with (
            running([sys.executable, "-m", "authhooks", "serve"], env, url + "/healthz"),
            admin_api(url, Path(data_dir)) as api,
        ):
            yield Server(url, api)


@contextmanager
def admin_api(url: str, data_dir: Path) -> Iterator[httpx.Client]:
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
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    with httpx.Client(base_url=url + "/api/v2", headers=headers, timeout=60) as api:
        yield api


def create_app(api: httpx.Client) -> str:
    """A public app allowed the password grant, and an API to ask tokens for; the client id."""
    api.post(
        "/resource-servers",
        json={"name": "Bench API", "identifier": AUDIENCE, "scopes": [{"value": "read:notes"}]},
    ).raise_for_status()
    app = api.post(
        "/clients", json={"name": "bench app", "app_type": "native", "grant_types": ["password"]}
    )
    app.raise_for_status()
    return str(app.json()["client_id"])


def create_hook(api: httpx.Client, point: str, script: str) -> str:
    created = api.post(
        "/hooks", json={"name": f"bench-{point}", "script": script, "triggerId": point}
    )
    created.raise_for_status()
    hook_id = str(created.json()["id"])
    api.patch(f"/hooks/{hook_id}", json={"enabled": True}).raise_for_status()
    return hook_id


def enable_hooks(server: Server) -> str:
    """The three trivial hooks; the post-user-registration hook's id."""
    create_hook(server.api, "pre-user-registration", PRE_REGISTRATION)
    create_hook(server.api, "password-exchange", PASSWORD_EXCHANGE)
    post = create_hook(server.api, "post-user-registration", POST_REGISTRATION)
    let_workers_see_hooks()
    return post


def let_workers_see_hooks() -> None:
    # A worker process other than the one that took the change sees it only after
    # its cache_ttl (1 s by default).
    time.sleep(1.5)


# --- the driver ----------------------------------------------------------------------------


def until(deadline: float) -> Iterator[None]:
    """One ticket per request while time is left; shared by all tasks of a run."""
    while time.monotonic() < deadline:
        yield None


async def drive(
    url: str, name: str, send: Send, tickets: Iterator[object], concurrency: int
) -> Run:
    """Run ``send`` from ``concurrency`` tasks, one request per ticket, until tickets run out."""
    run = Run(name)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Requests queue behind argon2 on a busy server: a generous timeout, so that
    # slowness shows in the latencies rather than as errors.
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:

        async def task() -> None:
            for _ in tickets:
                began = time.perf_counter()
                try:
                    response = await send(http)
                except httpx.HTTPError as error:
                    run.errors[type(error).__name__] += 1
                    continue
                if response.status_code == 200:
                    run.latencies_ms.append((time.perf_counter() - began) * 1e3)
                else:
                    run.errors[f"{response.status_code} {response.text[:120]}"] += 1

        began = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(concurrency)))
        run.elapsed = time.perf_counter() - began
    return run


def signups(client_id: str, prefix: str, created: list[str]) -> Send:
    """Signups with unique emails; the emails that got an account go to ``created``."""
    # Its own numbering, so that the warm-up and the measured run never reuse an email.
    numbers = itertools.count()

    async def send(http: httpx.AsyncClient) -> httpx.Response:
        email = f"{prefix}-{next(numbers)}@bench.example.com"
        body = {"client_id": client_id, "email": email, "password": PASSWORD}
        response = await http.post("/dbconnections/signup", json=body)
        if response.status_code == 200:
            created.append(email)
        return response

    return send


def logins(client_id: str, emails: list[str]) -> Send:
    # Round robin over the users, so that concurrent logins rarely update the same row.
    users = itertools.cycle(emails)

    async def send(http: httpx.AsyncClient) -> httpx.Response:
        form = {
            "grant_type": "password",
            "client_id": client_id,
            "username": next(users),
            "password": PASSWORD,
            "audience": AUDIENCE,
            "scope": "read:notes",
        }
        return await http.post("/oauth/token", data=form)

    return send


def timed(url: str, name: str, send: Send, args: argparse.Namespace) -> Run:
    """A warm-up (discarded), then the measured run."""
    asyncio.run(drive(url, name, send, until(time.monotonic() + args.warmup), args.concurrency))
    deadline = time.monotonic() + args.duration
    return asyncio.run(drive(url, name, send, until(deadline), args.concurrency))


# --- deliveries ----------------------------------------------------------------------------


def count(api: httpx.Client, hook_id: str, status: str) -> int:
    response = api.get(
        f"/hooks/{hook_id}/deliveries",
        params={"status": status, "per_page": 1, "include_totals": "true"},
    )
    response.raise_for_status()
    return int(response.json()["total"])


def wait_until_done(api: httpx.Client, hook_id: str, timeout: float) -> None:
    """Return once no delivery of the hook is pending; raise after ``timeout`` seconds."""
    began = time.monotonic()
    while (pending := count(api, hook_id, "pending")) > 0:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{pending} deliveries of {hook_id} still pending after {timeout} s")
        time.sleep(0.1)


def all_deliveries(api: httpx.Client, hook_id: str) -> list[dict[str, Any]]:
    """Every delivery, page by page (stable once none is pending: the order is by creation)."""
    found: list[dict[str, Any]] = []
    for page in itertools.count():
        response = api.get(f"/hooks/{hook_id}/deliveries", params={"per_page": 100, "page": page})
        response.raise_for_status()
        found += response.json()
        if len(response.json()) < 100:
            break
    return found


def at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@dataclass(frozen=True)
class Burst:
    signups: Run
    statuses: Counter[str]
    retried: int  # deliveries that took more than one attempt
    lags_s: list[float]
    server_span_s: float  # first created_at to last finished_at
    client_span_s: float  # first signup sent to no delivery pending, seen by polling


def burst(args: argparse.Namespace) -> Burst:
    with serve(args.workers, args.burst_argon2) as server:
        client_id = create_app(server.api)
        # Only the asynchronous hook: signups should be as cheap as possible here.
        hook_id = create_hook(server.api, "post-user-registration", POST_REGISTRATION)
        let_workers_see_hooks()
        began = time.monotonic()
        send = signups(client_id, "burst", [])
        run = asyncio.run(
            drive(server.url, "burst", send, iter(range(args.burst)), args.burst_concurrency)
        )
        wait_until_done(server.api, hook_id, timeout=600)
        client_span = time.monotonic() - began
        found = all_deliveries(server.api, hook_id)
    delivered = [item for item in found if item["status"] == "delivered"]
    lags = [at(item["finished_at"]) - at(item["created_at"]) for item in delivered]
    span = (
        max(at(item["finished_at"]) for item in delivered)
        - min(at(item["created_at"]) for item in delivered)
        if delivered
        else 0.0
    )
    retried = sum(1 for item in found if item["attempts"] != 1)
    return Burst(run, Counter(item["status"] for item in found), retried, lags, span, client_span)


# --- the runs ------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> tuple[list[Run], Counter[str]]:
    """Signups then logins, without and with hooks, on one server; the hooked signups'
    delivery statuses."""
    with serve(args.workers, args.argon2) as server:
        client_id = create_app(server.api)
        plain: list[str] = []
        runs = [timed(server.url, "signup", signups(client_id, "plain", plain), args)]
        runs.append(timed(server.url, "login", logins(client_id, plain), args))
        hook_id = enable_hooks(server)
        hooked: list[str] = []
        runs.append(timed(server.url, "signup+hooks", signups(client_id, "hooked", hooked), args))
        # The hooked signups' deliveries run in the background; let them finish so
        # that they do not weigh on the login run.
        wait_until_done(server.api, hook_id, timeout=600)
        statuses = Counter(item["status"] for item in all_deliveries(server.api, hook_id))
        runs.append(timed(server.url, "login+hooks", logins(client_id, plain + hooked), args))
    return runs, statuses


def cpu_per_hash(argon2: Argon2, rounds: int = 5) -> tuple[float, float]:
    """(wall ms, CPU ms over all lanes) of one hash, in this process on a quiet machine."""
    hasher = PasswordHasher(argon2.time_cost, argon2.memory_cost, argon2.parallelism, type=Type.ID)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        hasher.hash(PASSWORD)
    return (
        (time.perf_counter() - wall) * 1e3 / rounds,
        (time.process_time() - cpu) * 1e3 / rounds,
    )


# --- the report ----------------------------------------------------------------------------


def print_runs(runs: list[Run], statuses: Counter[str], args: argparse.Namespace) -> None:
    print(
        f"\nauthhooks serve, {args.workers} workers, SQLite, {args.argon2}; "
        f"{args.concurrency} concurrent httpx tasks, {args.duration} s per run "
        f"after {args.warmup} s warm-up, on the same {os.cpu_count()}-core machine"
    )
    print(f"{'run':<14} {'ok':>6} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for run in runs:
        p50, p99 = percentile(run.latencies_ms, 0.5), percentile(run.latencies_ms, 0.99)
        print(
            f"{run.name:<14} {run.ok:>6} {run.per_s:>8.1f} {p50:>8.1f} {p99:>8.1f} "
            f"{sum(run.errors.values()):>7}"
        )
    by_name = {run.name: run for run in runs}
    for name in ("signup", "login"):
        base, hooked = by_name[name], by_name[name + "+hooks"]
        added = percentile(hooked.latencies_ms, 0.99) - percentile(base.latencies_ms, 0.99)
        print(
            f"{name}+hooks/{name} throughput {hooked.per_s / base.per_s:.2f}, "
            f"p99 added {added:+.1f} ms"
        )
    print(f"post-user-registration deliveries of signup+hooks: {dict(statuses)}")
    print_errors(runs)


def print_errors(runs: list[Run]) -> None:
    for run in runs:
        for error, times in run.errors.most_common(5):
            print(f"  {run.name} error x{times}: {error}")


def print_hash_cost(argon2: Argon2, wall_ms: float, cpu_ms: float) -> None:
    cores = os.cpu_count() or 1
    print(
        f"one {argon2} hash, sequential in the bench process: {wall_ms:.0f} ms wall, "
        f"{cpu_ms:.0f} ms CPU; all {cores} cores hashing and nothing else "
        f"would give {cores * 1000 / cpu_ms:.1f} hashes/s"
    )


def print_burst(result: Burst, args: argparse.Namespace) -> None:
    run, lags = result.signups, result.lags_s
    print(
        f"\npost-user-registration burst: {args.burst} signups at concurrency "
        f"{args.burst_concurrency}, {args.workers} workers, {args.burst_argon2} "
        "(cheap on purpose: the queue is measured, not hashing)"
    )
    print(
        f"signups: {run.ok} ok, {sum(run.errors.values())} errors in {run.elapsed:.1f} s "
        f"({run.per_s:.0f}/s, p50 {percentile(run.latencies_ms, 0.5):.1f} ms, "
        f"p99 {percentile(run.latencies_ms, 0.99):.1f} ms)"
    )
    print(f"deliveries: {dict(result.statuses)}, {result.retried} took more than one attempt")
    if lags:
        print(
            f"lag finished_at - created_at (s): p50 {percentile(lags, 0.5):.2f}  "
            f"p99 {percentile(lags, 0.99):.2f}  max {max(lags):.2f}  "
            f"mean {statistics.fmean(lags):.2f}"
        )
    print(
        f"whole burst delivered: {result.server_span_s:.1f} s from the first created_at to "
        f"the last finished_at; {result.client_span_s:.1f} s from the first signup sent "
        "to none pending (polled every 0.1 s)"
    )
    print_errors([run])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--argon2", type=Argon2.parse, default=Argon2(3, 65536, 4), help="t,m,p")
    parser.add_argument("--burst", type=int, default=1000, help="signups in the burst; 0: skip")
    parser.add_argument("--burst-concurrency", type=int, default=16)
    parser.add_argument("--burst-argon2", type=Argon2.parse, default=Argon2(1, 8192, 1))
    args = parser.parse_args()

    print(f"throughput runs: {args.argon2}; burst: {args.burst_argon2}")
    hash_cost = cpu_per_hash(args.argon2)
    runs, statuses = throughput(args)
    result = burst(args) if args.burst else None
    print_runs(runs, statuses, args)
    print_hash_cost(args.argon2, *hash_cost)
    if result is not None:
        print_burst(result, args)


if __name__ == "__main__":
    main()
