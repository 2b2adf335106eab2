"""A hook flooding its own frame pipe costs the server next to nothing: /healthz and
a token request with no hook on its path answer as fast as on a quiet server.

Hook code can write to the pipe its answers go through. Every frame below is
well-formed JSON for the hook's first call (id 1), and the first two are
full of tiny nested lists: parsed and walked on the event loop, 4 MiB of them
took about a second."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, run_server, unique

INTERVAL = 0.05


def tiny_lists(count: int) -> str:
    """A console line's frame with ``count`` empty lists hidden in it (hook source)."""
    head = '{"op":"log","id":1,"stream":"stdout","line":"x","pad":['
    return f"b{head!r} + b'[],' * {count} + b'[]]}}'"


# The frames the hook writes (hook source).
FLOODS = {
    # The issue's: 4 MiB, the old frame size cap.
    "huge": tiny_lists(4 * 1024 * 1024 // 3 - 100),
    # Small enough for a console line's frame, but a console line it is not.
    "hidden": tiny_lists(10_000),
    # Real console lines at the length limit (6,096 characters, each written in
    # 6 bytes), as many as the call allows: these are parsed, and must be cheap.
    "longest": (
        'json.dumps({"op": "log", "id": 1, "stream": "stdout", "line": "\\x01" * 6096},'
        ' separators=(",", ":")).encode()'
    ),
}


def flooding(body: str) -> str:
    """A credentials-exchange hook writing the frame ``body`` to every descriptor it
    holds past 2 (its answer pipe among them) until it is stopped."""
    return f"""
import json, os, struct
def credentials_exchange(client, scope, audience, context):
    body = {body}
    frame = struct.pack(">I", len(body)) + body
    fds = [int(n) for n in os.listdir("/proc/self/fd") if int(n) > 2]
    while True:
        for fd in fds:
            try:
                os.write(fd, frame)
            except OSError:
                pass
"""


def latencies(server: Server, seconds: float) -> tuple[list[float], list[float]]:
    """(GET /healthz, a management-API token request) latencies over ``seconds``, in
    seconds. Each request is due at a fixed time and counted from then, so that a
    stalled server shows in every request it delayed, not only in the one it held."""
    health: list[float] = []
    token: list[float] = []
    form = {
        "grant_type": "client_credentials",
        "client_id": server.admin_id,
        "client_secret": server.admin_secret,
        "audience": server.management_audience,
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        began = time.perf_counter()
        for due in (began + step * INTERVAL for step in range(int(seconds / INTERVAL))):
            time.sleep(max(0.0, due - time.perf_counter()))
            if len(health) <= len(token):
                assert client.get("/healthz").status_code == 200
                health.append(time.perf_counter() - due)
            else:
                response = client.post("/oauth/token", data=form)
                assert response.status_code == 200, response.text
                token.append(time.perf_counter() - due)
    return health, token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("flood"), "sqlite") as running:
        yield running


@pytest.mark.parametrize("flood", FLOODS)
def test_a_frame_flood_does_not_stall_the_server(server: Server, flood: str) -> None:
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("flood"),
                "script": flooding(FLOODS[flood]),
                "triggerId": "credentials-exchange",
                "timeout_ms": 8000,
            },
        )
        assert created.status_code == 201, created.text
        hook_id = created.json()["id"]
    quiet_health, quiet_token = latencies(server, 2)

    stop = threading.Event()
    runs: list[str] = []

    def keep_flooding() -> None:
        with server.api() as api:
            while not stop.is_set():  # each run is a draft: a new worker, call id 1
                draft = {"script": flooding(FLOODS[flood])}
                response = api.post(f"/hooks/{hook_id}/test", json=draft, timeout=60)
                runs.append(response.json().get("outcome", response.text))

    flooder = threading.Thread(target=keep_flooding, daemon=True)
    flooder.start()
    try:
        time.sleep(1.5)  # the first run's worker started and flooding
        flood_health, flood_token = latencies(server, 6)
    finally:
        stop.set()
        flooder.join(70)
    assert runs
    # Generous for a shared CI machine: quiet is a few ms, the old code over a second.
    for quiet, flooded in ((quiet_health, flood_health), (quiet_token, flood_token)):
        assert statistics.median(flooded) < statistics.median(quiet) + 0.05, (quiet, flooded)
