"""Latency of live hook console lines on the log stream, from print to subscriber.

Starts ``authhooks serve`` as a user would (access log off; SQLite, or the
database of ``--database-url`` in a fresh schema), creates an API, a machine
client, its grant and a credentials-exchange hook that prints ``time.time()``
(the sandbox shares the host's clock) and the request's User-Agent through the
management API, attaches one Server-Sent Events subscriber to
``/api/v2/logs/stream?hook_id=<the hook>`` in a process of its own, and sends
``--requests`` token requests one after the other, then the same number from
``--concurrency`` concurrent clients. Each ``console`` event's latency is the
subscriber's receipt time less the time the hook printed; every line, and
every invocation record, must arrive.

With several server processes, the bench finds which process holds each of its
connections (``/proc/net/tcp`` and the processes' descriptors, on this machine)
and spreads its connections evenly over them; each request's User-Agent names
the request, so each line is told apart as served by the subscriber's own
process or by another one (relayed through PostgreSQL ``LISTEN``/``NOTIFY``).

    python bench/log_stream.py [--requests 500] [--concurrency 8] [--workers 1]
                               [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from token_endpoint import admin_token, free_port, running, setup_machine

HOOK = """
import time


def credentials_exchange(client, scope, audience, context):
    print(time.time(), context["request"]["user_agent"])
    return {"scope": scope}
"""


@dataclass(frozen=True)
class Received:
    kind: str  # "console", "invocation", "dropped"
    at: float  # time.time() when the subscriber had read the whole event
    data: dict[str, Any]


@dataclass
class Pass:
    name: str
    tag: str  # User-Agent of request n: f"{tag}-{n}"
    seconds: float = 0.0
    statuses: Counter[int | str] = field(default_factory=Counter)
    request_ms: list[float] = field(default_factory=list)
    served_by: dict[str, int | None] = field(default_factory=dict)  # User-Agent -> pid


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


# --- the server ------------------------------------------------------------------------------


@contextmanager
def postgres_schema(database_url: str) -> Iterator[str]:
    """``database_url`` with its connections in a new schema, dropped afterwards."""
    schema = f"authhooks_bench_{secrets.token_hex(6)}"
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def serve(args: argparse.Namespace, port: int) -> Iterator[tuple[str, Path]]:
    """The server's URL and data dir."""
    url = f"http://127.0.0.1:{port}"
    schema = postgres_schema(args.database_url) if args.database_url else nullcontext("")
    with schema as database_url, tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AUTHHOOKS_DATA_DIR": data_dir,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_WORKERS": str(args.workers),
            "AUTHHOOKS_LOG_LEVEL": "warning",
            # Heartbeats on the idle stream let the subscriber notice it should stop.
            "AUTHHOOKS_LOG_STREAM_HEARTBEAT": "1",
        }
        env.pop("AUTHHOOKS_CONFIG", None)
        if database_url:
            env["AUTHHOOKS_DATABASE_URL"] = database_url
        with running([sys.executable, "-m", "authhooks", "serve"], env, url + "/healthz"):
            yield url, Path(data_dir)


def serving_pid(server_port: int, client_port: int) -> int | None:
    """The process holding the server end of our loopback connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
            for descriptor in descriptors:
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                    return int(pid)
        except OSError:  # gone, or not ours (the sandboxes)
            continue
    return None


def client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


# --- the subscriber, in a process of its own -------------------------------------------------


def subscribe(
    url: str,
    token: str,
    hook_id: str,
    ready: Any,
    stop: Any,
    counts: Synchronized[int],
    port: Synchronized[int],
    results: Connection,
) -> None:
    """Read the stream until ``stop``; send back every event with the time it was read.

    Only the receipt time is taken while reading; the JSON is parsed afterwards.
    """
    raw: list[tuple[str, float, str]] = []
    error = None
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(30, read=60)) as client,
            client.stream(
                "GET", url + "/api/v2/logs/stream", params={"hook_id": hook_id}, headers=headers
            ) as response,
        ):
            if response.status_code != 200:
                error = f"status {response.status_code}: {response.read()[:200]!r}"
                return
            port.value = client_port(response)
            kind, data = "message", list[str]()
            for line in response.iter_lines():
                if line == "":
                    if data:
                        raw.append((kind, time.time(), "\n".join(data)))
                        with counts.get_lock():
                            counts.value += 1
                    kind, data = "message", []
                elif line.startswith("retry:"):
                    ready.set()  # sent once the stream is subscribed to the bus
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        kind = value
                    elif name == "data":
                        data.append(value)
                if stop.is_set():
                    return
            error = "the server ended the stream"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"
    finally:
        ready.set()
        results.send((raw, error))
        results.close()


class Subscriber:
    def __init__(self, url: str, token: str, hook_id: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self.counts = context.Value("q", 0)
        self.port = context.Value("i", 0)
        self._results, sending = context.Pipe(duplex=False)
        self._process = context.Process(
            target=subscribe,
            args=(url, token, hook_id, self._ready, self._stop, self.counts, self.port, sending),
            daemon=True,
        )

    def __enter__(self) -> Subscriber:
        self._process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the log stream did not open within 60 s")
        return self

    def __exit__(self, *_: object) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def wait_for(self, events: int, timeout: float, settled: float = 3.0) -> None:
        """Until ``events`` have arrived, none has for ``settled`` s, or ``timeout`` s passed."""
        deadline = time.monotonic() + timeout
        seen, last_change = self.counts.value, time.monotonic()
        while time.monotonic() < deadline and self._process.is_alive():
            count = self.counts.value
            if count >= events:
                return
            if count != seen:
                seen, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > settled:
                return
            time.sleep(0.02)

    def finish(self) -> tuple[list[Received], str | None]:
        """Stop reading (at the next heartbeat at the latest); every event read, and any error."""
        self._stop.set()
        if not self._results.poll(30):
            return [], "the subscriber sent nothing back within 30 s"
        raw, error = self._results.recv()
        self._process.join(10)
        return [Received(kind, at, json.loads(data)) for kind, at, data in raw], error


# --- the requests ----------------------------------------------------------------------------


@contextmanager
def connections(
    url: str, server_port: int, count: int, processes: int
) -> Iterator[list[httpx.Client]]:
    """``count`` open keep-alive clients, spread evenly over the server's processes."""
    quota = -(-count // processes)
    kept: list[httpx.Client] = []
    per_pid: Counter[int | None] = Counter()
    try:
        for _ in range(50 * count):
            client = httpx.Client(base_url=url, timeout=30)
            pid = serving_pid(server_port, client_port(client.get("/healthz")))
            if per_pid[pid] < quota:
                per_pid[pid] += 1
                kept.append(client)
                if len(kept) == count:
                    break
            else:
                client.close()
        while len(kept) < count:  # the processes did not take turns: make do
            kept.append(httpx.Client(base_url=url, timeout=30))
        yield kept
    finally:
        for client in kept:
            client.close()


def send_requests(
    clients: list[httpx.Client],
    form: dict[str, str],
    total: int,
    concurrent: bool,
    run: Pass,
    server_port: int,
) -> Pass:
    """``total`` token requests: one thread per client, or one thread taking turns on them."""
    tickets = iter(range(total))
    lock = threading.Lock()
    pids: dict[int, int | None] = {}  # client port -> server process

    def send(client: httpx.Client, n: int) -> None:
        agent = f"{run.tag}-{n}"
        began = time.perf_counter()
        pid = None
        try:
            response = client.post("/oauth/token", data=form, headers={"User-Agent": agent})
            status: int | str = response.status_code
            port = client_port(response)
            if port not in pids:
                pids[port] = serving_pid(server_port, port)
            pid = pids[port]
        except httpx.HTTPError as error:
            status = type(error).__name__
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            run.statuses[status] += 1
            run.request_ms.append(elapsed)
            run.served_by[agent] = pid

    def take(own: list[httpx.Client]) -> None:
        turn = 0
        while True:
            with lock:
                n = next(tickets, None)
            if n is None:
                return
            send(own[turn % len(own)], n)
            turn += 1

    groups = [[client] for client in clients] if concurrent else [clients]
    started = time.perf_counter()
    threads = [threading.Thread(target=take, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run


# --- the figures -----------------------------------------------------------------------------


@dataclass
class Line:
    latency_ms: float  # subscriber receipt - printed
    to_server_ms: float  # the server's receipt (the line's "at") - printed
    to_subscriber_ms: float  # subscriber receipt - "at"
    pid: int | None  # the server process that ran the hook


@dataclass
class Figures:
    lines: list[Line]
    records: int  # invocation records of the pass
    lines_without_record: int
    records_without_line: int
    mismatched: int  # a record whose console differs from the live line
    duplicates: int


def figures(events: list[Received], run: Pass) -> Figures:
    def ours(text: str) -> bool:
        return text.split(" ")[-1].startswith(run.tag + "-")

    lines: dict[str, Received] = {}
    duplicates = 0
    for event in events:
        if event.kind == "console" and ours(event.data["text"]):
            duplicates += event.data["invocation_id"] in lines
            lines[event.data["invocation_id"]] = event
    records = {
        event.data["id"]: event
        for event in events
        if event.kind == "invocation" and any(ours(line["text"]) for line in event.data["console"])
    }
    mismatched = sum(
        1
        for invocation_id, record in records.items()
        if invocation_id in lines
        and [line["text"] for line in record.data["console"] if line["stream"] == "stdout"]
        != [lines[invocation_id].data["text"]]
    )
    measured = []
    for event in lines.values():
        printed_text, agent = event.data["text"].split(" ")
        printed = float(printed_text)
        measured.append(
            Line(
                (event.at - printed) * 1000,
                (event.data["at"] - printed) * 1000,
                (event.at - event.data["at"]) * 1000,
                run.served_by.get(agent),
            )
        )
    return Figures(
        lines=measured,
        records=len(records),
        lines_without_record=len(lines.keys() - records.keys()),
        records_without_line=len(records.keys() - lines.keys()),
        mismatched=mismatched,
        duplicates=duplicates,
    )


def spread(samples: list[float]) -> str:
    return (
        f"{percentile(samples, 0.5):>7.2f} {percentile(samples, 0.99):>7.2f} "
        f"{max(samples, default=0.0):>8.2f}"
    )


def report(
    args: argparse.Namespace,
    runs: list[tuple[Pass, Figures]],
    subscriber_pid: int | None,
    error: str | None,
) -> None:
    database = urlsplit(args.database_url).scheme.split("+")[0] if args.database_url else "sqlite"
    print(
        f"\nlog stream: {args.workers} server process(es), {database}; one subscriber "
        f"(a process of its own) on /api/v2/logs/stream?hook_id=<hook>; the hook prints "
        f"time.time(); all on the same {os.cpu_count()}-core machine"
    )
    print(
        f"{'pass':<14} {'requests':>8} {'ok':>5} {'req/s':>6} {'lines':>6} {'records':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>8}   request p50/p99 ms"
    )
    for run, got in runs:
        total = sum(run.statuses.values())
        print(
            f"{run.name:<14} {total:>8} {run.statuses[200]:>5} {total / run.seconds:>6.0f} "
            f"{len(got.lines):>6} {got.records:>7} {spread([x.latency_ms for x in got.lines])}   "
            f"{percentile(run.request_ms, 0.5):.2f} / {percentile(run.request_ms, 0.99):.2f}"
        )
    print("latency = subscriber receipt - printed time; split at the server's receipt (`at`):")
    for run, got in runs:
        print(
            f"{run.name:<14} print->server p50/p99/max "
            f"{spread([x.to_server_ms for x in got.lines])}   server->subscriber "
            f"{spread([x.to_subscriber_ms for x in got.lines])}"
        )
    if args.workers > 1:
        print(f"by the process that ran the hook (the subscriber's: pid {subscriber_pid}):")
        for run, got in runs:
            for pid in sorted(
                {x.pid for x in got.lines}, key=lambda pid: (pid != subscriber_pid, str(pid))
            ):
                mine = [x for x in got.lines if x.pid == pid]
                if pid is None:
                    where = "unknown process"
                elif pid == subscriber_pid:
                    where = f"pid {pid} (own)"
                else:
                    where = f"pid {pid} (relayed)"
                print(
                    f"{run.name:<14} {where:<22} {len(mine):>4} lines, latency p50/p99/max "
                    f"{spread([x.latency_ms for x in mine])}   server->subscriber "
                    f"{spread([x.to_subscriber_ms for x in mine])}"
                )
    for run, got in runs:
        total = sum(run.statuses.values())
        problems = []
        if run.statuses[200] != total:
            problems.append(f"answers {dict(run.statuses)}")
        if len(got.lines) != total:
            problems.append(f"{total - len(got.lines)} lines missing")
        if got.records != total:
            problems.append(f"{total - got.records} records missing")
        if got.lines_without_record or got.records_without_line or got.mismatched:
            problems.append(
                f"{got.lines_without_record} lines without a record, {got.records_without_line} "
                f"records without a live line, {got.mismatched} records differing from the line"
            )
        if got.duplicates:
            problems.append(f"{got.duplicates} lines received twice")
        print(f"{run.name}: {'; '.join(problems) or 'every line and record arrived, once'}")
    if error:
        print(f"subscriber: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="token requests per pass")
    parser.add_argument("--concurrency", type=int, default=8, help="clients of the second pass")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL; a fresh schema is made in it"
    )
    parser.add_argument("--warmup", type=int, default=100, help="requests before subscribing")
    args = parser.parse_args()

    port = free_port()
    with serve(args, port) as (url, data_dir):
        token = admin_token(url, data_dir)
        form = setup_machine(url, data_dir, 1, HOOK)
        hooks = httpx.get(
            url + "/api/v2/hooks", headers={"Authorization": f"Bearer {token}"}
        ).json()
        time.sleep(1.5)  # other server processes see the new hook within cache_ttl (1 s)
        # Every process starts the hook's worker (a cold start) before anything is measured.
        with connections(url, port, args.concurrency, args.workers) as clients:
            send_requests(clients, form, args.warmup, True, Pass("warm-up", "w"), port)
        time.sleep(0.5)  # its records are stored (every 0.1 s) before the stream starts
        runs = [
            (Pass("sequential", "s"), args.workers, False),
            (Pass(f"{args.concurrency} concurrent", "c"), args.concurrency, True),
        ]
        with Subscriber(url, token, hooks[0]["id"]) as subscriber:
            subscriber_pid = serving_pid(port, subscriber.port.value)
            for number, (run, count, concurrent) in enumerate(runs, 1):
                # Opened just before: uvicorn closes connections idle for 5 s.
                with connections(url, port, count, args.workers) as clients:
                    send_requests(clients, form, args.requests, concurrent, run, port)
                # A line and a record per request.
                subscriber.wait_for(2 * number * args.requests, timeout=30)
            events, error = subscriber.finish()
    dropped = [event for event in events if event.kind == "dropped"]
    if dropped:
        error = f"{error or ''} dropped: {dropped[0].data}".strip()
    report(args, [(run, figures(events, run)) for run, _, _ in runs], subscriber_pid, error)


if __name__ == "__main__":
    main()
