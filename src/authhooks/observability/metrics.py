"""Prometheus metrics (prometheus-client), for every server process at once.

``authhooks serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before any server process starts (processes.py), so that each process (uvicorn worker) writes
its figures to files there and a scrape of any of them, or of the separate
metrics port, sums them all. Without that variable (an app built in-process)
the figures are this process's own.

Labels only ever take bounded values: grant types the server supports,
outcome codes, point names, hook ids and fixed reasons, never what a client
sends.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from authhooks.observability.processes import MULTIPROCESS_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

TOKEN_REQUESTS = Counter(
    "authhooks_token_requests",
    "Requests to POST /oauth/token by grant type and outcome (issued, or the RFC 6749 error)",
    ["grant_type", "outcome"],
)
TOKEN_SECONDS = Histogram(
    "authhooks_token_request_duration_seconds",
    "Time to answer POST /oauth/token, hooks included",
    ["grant_type"],
    buckets=_FAST,
)
HOOK_INVOCATIONS = Counter(
    "authhooks_hook_invocations",
    "Hook runs by hook id, point and outcome (ok, or the failure kind); runner calls excluded",
    ["hook", "point", "outcome"],
)
HOOK_SECONDS = Histogram(
    "authhooks_hook_duration_seconds",
    "Time of one hook run, queueing for a sandbox worker included",
    ["point"],
    buckets=_FAST,
)
SANDBOX_WORKERS = Gauge(
    "authhooks_sandbox_workers",
    "Sandbox worker processes by state (alive: loaded or loading; starting: being spawned)",
    ["state"],
    multiprocess_mode="livesum",
)
SANDBOX_WORKERS_KILLED = Counter(
    "authhooks_sandbox_workers_killed",
    "Sandbox workers ended, by reason",
    ["reason"],
)
DELIVERY_QUEUE = Gauge(
    "authhooks_delivery_queue_depth",
    "Deliveries of asynchronous points waiting (pending), as last counted",
    multiprocess_mode="mostrecent",
)
DELIVERY_LAG = Histogram(
    "authhooks_delivery_lag_seconds",
    "Time from an asynchronous event to its successful delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0),
)
SCHEDULE_TICKS = Counter(
    "authhooks_schedule_ticks",
    "Ticks of scheduled hooks by hook and what became of them: run, caught_up (one run "
    "for ticks missed while no server ran), skipped_overlap (the previous run was still "
    "going), skipped_missed (missed, catch_up off)",
    ["hook", "outcome"],
)
EGRESS_REQUESTS = Counter(
    "authhooks_egress_requests",
    "Outbound connections hooks asked the egress broker for, by outcome (allowed, refused)",
    ["outcome"],
)
LOG_SUBSCRIBERS = Gauge(
    "authhooks_log_stream_subscribers",
    "Clients attached to GET /api/v2/logs/stream",
    multiprocess_mode="livesum",
)


def forget_dead_processes() -> None:
    """Drop the live gauges of server processes that died (a crashed worker that
    uvicorn replaced), so they no longer add to ``livesum`` gauges."""
    path = os.environ.get(MULTIPROCESS_ENV)
    if not path:
        return
    pids = {
        int(match.group(1))
        for file in Path(path).glob("gauge_live*_*.db")
        if (match := re.search(r"_(\d+)\.db$", file.name))
    }
    for pid in pids:
        if not Path(f"/proc/{pid}").exists():
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The current figures in the Prometheus text format."""
    path = os.environ.get(MULTIPROCESS_ENV)
    if not path:
        return generate_latest(REGISTRY)
    forget_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
