"""An operator at work under steady token load: deploys, rollbacks, flapping,
reordering, secret changes, deletions, key and client-secret rotation, restarts.
Each fails no token request that would have succeeded before or after, and
leaves no sandbox, process or memory behind (docs/operations.md, "Operating
under load")."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import (
    BACKENDS,
    CACHE_TTL,
    Machine,
    Server,
    _serve,
    create_machine,
    run_server,
    serve_again,
    unique,
)
from tests.observability.exposition import scrape, value
from tests.stress.conftest import FULL, Report
from tests.stress.steady import SteadyLoad, alive, resident, sandboxes, tree, wait_until

SCRAPE = "stress-operations-scrape-0123456789"
PROCESSES = 2
ACTIONS = 8 if FULL else 4
PAUSE = 1.0 if FULL else 0.5  # seconds between two actions
WARM = 1.0  # seconds of load before the first action
PER_VERSION = 4  # the runtime's cap on workers per version, in each process
# After its last call a retired version's workers are gone within cache_ttl (every
# process follows the change) plus its longest call; the rest is this busy machine.
SETTLE = 10.0


def claim_hook(tag: str) -> str:
    """A hook that takes a few milliseconds, so that calls are running when the
    operator acts, and says which version answered."""
    return (
        "import time\n\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        "    time.sleep(0.003)\n"
        f"    return {{'https://example.com/version': {tag!r}}}\n"
    )


@dataclass
class Cluster:
    server: Server
    machine: Machine
    hook: dict[str, Any]

    def api(self) -> httpx.Client:
        return self.server.api()

    def live_sandboxes(self) -> int:
        assert self.server.process is not None
        return len(sandboxes(self.server.process.pid))

    def crashes(self) -> float:
        text = scrape(self.server, SCRAPE)
        return sum(
            value(text, "authhooks_sandbox_workers_killed_total", reason=reason)
            for reason in ("crashed", "exited", "protocol")
        )

    def hooks_live(self) -> int:
        with self.api() as api:
            hooks = api.get("/hooks", params={"triggerId": "credentials-exchange"}).json()
        return sum(1 for hook in hooks if hook["enabled"])

    def settled(self) -> bool:
        """Only live versions' workers remain, at most a pool of each per process."""
        return self.live_sandboxes() <= max(self.hooks_live(), 1) * PER_VERSION * PROCESSES


def add_hook(server: Server, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("ops"),
                "triggerId": "credentials-exchange",
                "script": script,
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp_path = tmp_path_factory.mktemp(f"ops-{request.param}")
    with run_server(tmp_path, request.param, workers=PROCESSES, metrics_token=SCRAPE) as server:
        machine = create_machine(server)
        hook = add_hook(server, claim_hook("v1"), enabled=True)
        yield Cluster(server, machine, hook)


def operate(cluster: Cluster, report: Report, name: str, act: Any) -> None:
    """Run ``act(number)`` ACTIONS times under load; nothing may fail, and the
    sandboxes settle back to what live versions need."""
    crashes = cluster.crashes()
    with SteadyLoad([cluster.server.url], cluster.machine.token_form) as load:
        time.sleep(WARM)
        for number in range(ACTIONS):
            act(number)
            time.sleep(PAUSE)
    figures = load.figures
    settled = wait_until(cluster.settled, SETTLE)
    report.add(
        f"{ACTIONS} x {name} ({cluster.server.backend})",
        f"{figures.describe()}; {cluster.live_sandboxes()} sandboxes after",
    )
    assert figures.errors == 0, figures.failures.most_common(5)
    assert figures.requests > 0
    assert settled, f"{cluster.live_sandboxes()} sandboxes for {cluster.hooks_live()} live hooks"
    # Retiring a pool is not a crash, and none is counted as one.
    assert cluster.crashes() == crashes


def test_deploys_fail_no_request(cluster: Cluster, report: Report) -> None:
    hook_id = cluster.hook["id"]

    def deploy(number: int) -> None:
        with cluster.api() as api:
            response = api.patch(f"/hooks/{hook_id}", json={"script": claim_hook(f"d{number}")})
        assert response.status_code == 200, response.text

    operate(cluster, report, "deploy", deploy)
    token = cluster.server.token(**_credentials(cluster.machine)).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["https://example.com/version"] == f"d{ACTIONS - 1}"


def test_rollbacks_fail_no_request(cluster: Cluster, report: Report) -> None:
    hook_id = cluster.hook["id"]
    with cluster.api() as api:
        versions = [v["number"] for v in api.get(f"/hooks/{hook_id}/versions").json()]
    assert len(versions) >= 2

    def roll(number: int) -> None:
        target = versions[number % 2]
        with cluster.api() as api:
            response = api.post(f"/hooks/{hook_id}/versions/{target}/deploy")
        assert response.status_code == 200, response.text

    operate(cluster, report, "rollback", roll)


def test_flapping_a_hook_fails_no_request(cluster: Cluster, report: Report) -> None:
    other = add_hook(cluster.server, claim_hook("flap"), enabled=True, order=5)

    def flap(number: int) -> None:
        with cluster.api() as api:
            for enabled in (False, True):
                response = api.patch(f"/hooks/{other['id']}", json={"enabled": enabled})
                assert response.status_code == 200, response.text

    try:
        operate(cluster, report, "disable + enable", flap)
    finally:
        with cluster.api() as api:
            api.delete(f"/hooks/{other['id']}")


def test_reordering_and_secret_changes_fail_no_request(cluster: Cluster, report: Report) -> None:
    reads_secret = (
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'https://example.com/key': context['secrets']['KEY'][:3]}\n"
    )
    other = add_hook(cluster.server, reads_secret, enabled=False, order=5)
    hook_id = other["id"]
    with cluster.api() as api:
        assert api.post(f"/hooks/{hook_id}/secrets", json={"KEY": "k-0"}).status_code == 201
        assert api.patch(f"/hooks/{hook_id}", json={"enabled": True}).status_code == 200

    def change(number: int) -> None:
        with cluster.api() as api:
            moved = api.patch(f"/hooks/{hook_id}", json={"order": -5 if number % 2 else 5})
            assert moved.status_code == 200, moved.text
            changed = api.patch(f"/hooks/{hook_id}/secrets", json={"KEY": f"k-{number + 1}"})
            assert changed.status_code == 200, changed.text

    try:
        operate(cluster, report, "reorder + secret change", change)
    finally:
        with cluster.api() as api:
            api.delete(f"/hooks/{hook_id}")


def test_deleting_hooks_fails_no_request(cluster: Cluster, report: Report) -> None:
    def add_then_delete(number: int) -> None:
        doomed = add_hook(cluster.server, claim_hook(f"doomed{number}"), enabled=True, order=7)
        time.sleep(PAUSE)
        with cluster.api() as api:
            assert api.delete(f"/hooks/{doomed['id']}").status_code == 204

    operate(cluster, report, "add + delete a hook", add_then_delete)


def test_client_secret_rotation_works_at_once_everywhere(cluster: Cluster, report: Report) -> None:
    machine = create_machine(cluster.server)
    current = {"secret": machine.client_secret}
    retired: dict[str, float] = {}  # secret -> when its rotation began

    def form() -> dict[str, str]:
        return {**machine.token_form(), "client_secret": current["secret"]}

    with SteadyLoad([cluster.server.url], form) as load:
        time.sleep(WARM)
        for _ in range(ACTIONS):
            retired[current["secret"]] = time.monotonic()
            with cluster.api() as api:
                response = api.post(f"/clients/{machine.client_id}/rotate-secret")
            assert response.status_code == 200, response.text
            current["secret"] = response.json()["client_secret"]  # used at once, by every client
            time.sleep(PAUSE)
    # A request still carrying a secret whose rotation had begun may be refused; any
    # other refusal is one of a secret that worked before or after: a failure.
    refused = [
        (sent, secret)
        for sent, answered, sent_form in load.figures.failed_forms
        if answered < retired.get(secret := sent_form["client_secret"], float("inf"))
    ]
    report.add(
        f"{ACTIONS} x client-secret rotation ({cluster.server.backend})",
        f"{load.figures.describe()} (requests with a secret being rotated away)",
    )
    assert not refused, refused[:5]
    assert load.figures.errors == len(load.figures.failed_forms)
    # The old secrets stop working everywhere within the documented bound.
    time.sleep(CACHE_TTL * 3)
    for _ in range(PROCESSES * 4):
        old = httpx.post(
            cluster.server.url + "/oauth/token", data={**form(), "client_secret": list(retired)[-1]}
        )
        assert old.status_code == 401, old.text


def test_signing_key_rotation_keeps_tokens_verifying(
    backend: str, tmp_path: Path, report: Report
) -> None:
    """Tokens signed just before a rotation keep verifying, and no token is signed
    with a key that a JWKS fetched after it, from any process, lacks. A long
    cache_ttl widens the moment when the processes disagree."""
    ttl = 0.5
    with run_server(tmp_path, backend, workers=PROCESSES, cache_ttl=ttl) as server:
        _rotate_keys_under_load(server, create_machine(server), ttl, report)


def _rotate_keys_under_load(server: Server, machine: Machine, ttl: float, report: Report) -> None:
    issued: list[str] = []
    unpublished: list[str] = []

    def issue_then_verify() -> None:
        token = server.token(**_credentials(machine))
        assert token.status_code == 200, token.text
        issued.append(token.json()["access_token"])
        # A new connection each time: either process may answer.
        jwks = httpx.get(server.url + "/.well-known/jwks.json").json()
        kid = jwt.get_unverified_header(issued[-1])["kid"]
        if kid not in {key["kid"] for key in jwks["keys"]}:
            unpublished.append(kid)

    with SteadyLoad([server.url], machine.token_form) as load:
        time.sleep(WARM)
        for _ in range(2):
            issue_then_verify()
            rotated = server.cli("keys", "rotate")
            assert rotated.returncode == 0, rotated.stderr
            deadline = time.monotonic() + ttl * 4
            while time.monotonic() < deadline:
                issue_then_verify()
    report.add(
        f"2 x signing-key rotation ({server.backend})",
        f"{load.figures.describe()}; {len(issued)} tokens checked against the JWKS",
    )
    assert load.figures.errors == 0, load.figures.failures.most_common(5)
    assert not unpublished, f"{len(unpublished)} tokens signed with a key not yet published"
    keys = jwt.PyJWKClient(server.url + "/.well-known/jwks.json")
    kids = {jwt.get_unverified_header(token)["kid"] for token in issued}
    assert len(kids) == 3  # each rotation switched the signing key
    for token in issued:
        key = keys.get_signing_key_from_jwt(token)
        jwt.decode(token, key, algorithms=["ES256", "RS256"], audience=machine.audience)


def _credentials(machine: Machine) -> dict[str, str]:
    return {
        "client_id": machine.client_id,
        "client_secret": machine.client_secret,
        "audience": machine.audience,
    }


# --- restarts: each with servers of its own ------------------------------------------------


def _hooked_server(server: Server) -> Machine:
    machine = create_machine(server)
    add_hook(server, claim_hook("v1"), enabled=True)
    assert server.token(**_credentials(machine)).status_code == 200
    return machine


def test_sigkill_of_serve_takes_every_process_with_it(tmp_path: Path, report: Report) -> None:
    with run_server(tmp_path, "sqlite", workers=PROCESSES) as server:
        machine = _hooked_server(server)
        with SteadyLoad([server.url], machine.token_form):
            time.sleep(WARM)
        assert server.process is not None
        everything = set(tree(server.process.pid))
        assert len(sandboxes(server.process.pid)) >= PROCESSES
        killed_at = time.monotonic()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        gone = wait_until(lambda: not alive(everything), 5)
        took = time.monotonic() - killed_at
        report.add("kill -9 of serve", f"{len(everything)} processes, all gone in {took:.2f} s")
        assert gone, {pid: Path(f"/proc/{pid}/comm").read_text() for pid in alive(everything)}
        assert took < 1.5  # within a second, plus this machine's scheduling
        # A service manager's restart, on the same port and data, works at once.
        env = {**server.env}
        with _serve(env, server.backend, tmp_path) as again:
            assert again.token(**_credentials(machine)).status_code == 200


def test_sigterm_fails_nothing_and_leaves_nothing(tmp_path: Path, report: Report) -> None:
    with run_server(tmp_path, "sqlite", workers=PROCESSES) as server:
        machine = _hooked_server(server)
        assert server.process is not None
        with SteadyLoad([server.url], machine.token_form) as load:
            time.sleep(WARM)
            everything = set(tree(server.process.pid))
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(30)
            time.sleep(0.5)  # clients meet the closed port for a while
        figures = load.figures
        report.add("SIGTERM under load", f"{figures.describe()}; exit {server.process.returncode}")
        # In-flight requests completed, and new connections were served or refused:
        # none was reset or dropped mid-way.
        assert figures.errors == 0, figures.failures.most_common(5)
        assert figures.refused > 0
        assert server.process.returncode == 0
        assert wait_until(lambda: not alive(everything), 5), alive(everything)


def test_rolling_restart_of_one_of_two_nodes_fails_nothing(
    backend: str, tmp_path: Path, report: Report
) -> None:
    with run_server(tmp_path, backend) as first:
        machine = _hooked_server(first)
        with serve_again(first, tmp_path) as second:
            env = dict(second.env)
            with SteadyLoad([first.url, second.url], machine.token_form) as load:
                time.sleep(WARM)
                assert second.process is not None
                second.process.send_signal(signal.SIGTERM)
                second.process.wait(30)
                with _serve(env, backend, tmp_path) as restarted:
                    time.sleep(WARM)
                    assert restarted.token(**_credentials(machine)).status_code == 200
        report.add(f"rolling restart of one of two nodes ({backend})", load.figures.describe())
        assert load.figures.errors == 0, load.figures.failures.most_common(5)


def test_sighup_replaces_the_server_processes_one_by_one(tmp_path: Path, report: Report) -> None:
    with run_server(tmp_path, "sqlite", workers=PROCESSES) as server:
        machine = _hooked_server(server)
        assert server.process is not None
        before = _server_processes(server.process.pid)
        with SteadyLoad([server.url], machine.token_form) as load:
            time.sleep(WARM)
            server.process.send_signal(signal.SIGHUP)
            replaced = wait_until(
                lambda: (
                    not (_server_processes(server.process.pid) & before)  # type: ignore[union-attr]
                    and len(_server_processes(server.process.pid)) == PROCESSES
                ),  # type: ignore[union-attr]
                60,
            )
            time.sleep(WARM)
        report.add("SIGHUP: rolling restart of the server processes", load.figures.describe())
        assert replaced, (before, _server_processes(server.process.pid))
        assert load.figures.errors == 0, load.figures.failures.most_common(5)
        assert load.figures.refused == 0  # the port never closed


def _server_processes(pid: int) -> set[int]:
    """The supervisor's server processes (multiprocessing's spawned children, not its
    resource tracker, nor their sandboxes)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return set()
    found = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
        except FileNotFoundError:
            continue
    return found


def test_memory_stays_flat_without_actions(tmp_path: Path, report: Report) -> None:
    seconds = 180.0 if FULL else 20.0
    with run_server(tmp_path, "sqlite", workers=PROCESSES) as server:
        machine = _hooked_server(server)
        assert server.process is not None
        pid = server.process.pid
        with SteadyLoad([server.url], machine.token_form) as load:
            time.sleep(min(10.0, seconds / 3))  # pools grown, caches filled
            start = resident(pid)
            time.sleep(seconds - min(10.0, seconds / 3))
            end = resident(pid)
        growth = (end - start) / start
        report.add(
            f"{seconds:.0f} s of load, no actions",
            f"{load.figures.describe()}; resident {start >> 20} -> {end >> 20} MiB ({growth:+.1%})",
        )
        assert load.figures.errors == 0, load.figures.failures.most_common(5)
        assert growth < 0.10, f"{start >> 20} -> {end >> 20} MiB"


def test_processes_are_gone_after_stop(tmp_path: Path) -> None:
    with run_server(tmp_path, "sqlite", workers=PROCESSES) as server:
        _hooked_server(server)
        assert server.process is not None
        everything = set(tree(server.process.pid))
    assert wait_until(lambda: not alive(everything), 5), alive(everything)
