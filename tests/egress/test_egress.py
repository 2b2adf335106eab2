"""Hooks reach the network through the egress broker only: allowed hosts over HTTP
and HTTPS, everything else refused with a reason, every connection logged."""

from __future__ import annotations

import errno
import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Server, run_server, unique
from tests.egress import servers
from tests.users.helpers import create_app, new_email, signup, wait_for

SLACK = "slack.test.example"
NOTHING = "def credentials_exchange(client, scope, audience, context):\n    pass\n"
SECURE = "secure.test.example"


@dataclass
class World:
    server: Server
    http: servers.TestServer
    https: servers.TestServer
    ca: str


@pytest.fixture(scope="module", params=["sqlite"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("egress")
    ca, tls = servers.certificate_authority(SECURE, directory)
    http, https = servers.start(), servers.start(tls)
    overrides = f"{SLACK}=127.0.0.1:{http.port},{SECURE}=127.0.0.1:{https.port}"
    try:
        with run_server(directory, request.param, egress_test_overrides=overrides) as server:
            yield World(server, http, https, ca)
    finally:
        http.close()
        https.close()


def hook_with(world: World, egress: list[str], point: str = "credentials-exchange") -> str:
    script = {
        "credentials-exchange": NOTHING,
        "post-user-registration": "def post_user_registration(user, context):\n    pass\n",
    }[point]
    with world.server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("egress"), "script": script, "triggerId": point, "egress": egress},
        )
    assert response.status_code == 201, response.text
    hook_id: str = response.json()["id"]
    return hook_id


def run(world: World, hook_id: str, body: str, **secrets: str) -> dict[str, Any]:
    script = (
        "import json, socket, ssl, urllib.request, urllib.error, http.client\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        + "".join(f"    {line}\n" for line in textwrap.dedent(body).strip().splitlines())
    )
    with world.server.api() as api:
        response = api.post(
            f"/hooks/{hook_id}/test", json={"script": script, "secrets": secrets}, timeout=30
        )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def egress_lines(report: dict[str, Any]) -> list[str]:
    return [line["text"] for line in report["console"] if line["stream"] == "egress"]


def test_an_allowed_host_over_http(world: World) -> None:
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    report = run(
        world,
        hook,
        f"""
        with urllib.request.urlopen("http://{SLACK}:{world.http.port}/hello?x=1") as answer:
            return {{"https://t.example/body": json.loads(answer.read())}}
        """,
    )
    assert report["outcome"] == "ok", "\n".join(line["text"] for line in report["console"])
    assert report["result"]["claims"]["https://t.example/body"] == {
        "ok": True,
        "path": "/hello?x=1",
    }
    [line] = egress_lines(report)
    assert line.startswith(f"egress GET {SLACK}:{world.http.port} -> 127.0.0.1:")
    assert "bytes in" in line


def test_an_allowed_host_over_https_end_to_end(world: World) -> None:
    hook = hook_with(world, [f"{SECURE}:{world.https.port}"])
    report = run(
        world,
        hook,
        f"""
        tls = ssl.create_default_context(cadata=context["secrets"]["CA"])
        url = "https://{SECURE}:{world.https.port}/secure"
        with urllib.request.urlopen(url, context=tls) as answer:
            body = json.loads(answer.read())
        connection = http.client.HTTPSConnection("127.0.0.1", 3128, context=tls)
        connection.set_tunnel("{SECURE}", {world.https.port})
        connection.request("GET", "/via-http-client")
        second = json.loads(connection.getresponse().read())
        return {{"https://t.example/body": [body, second]}}
        """,
        CA=world.ca,
    )
    assert report["outcome"] == "ok", "\n".join(line["text"] for line in report["console"])
    bodies = report["result"]["claims"]["https://t.example/body"]
    assert [body["path"] for body in bodies] == ["/secure", "/via-http-client"]
    assert all(line.startswith(f"egress CONNECT {SECURE}") for line in egress_lines(report))


def test_httpx_works_unchanged(world: World) -> None:
    hook = hook_with(world, [f"{SLACK}:{world.http.port}", f"{SECURE}:{world.https.port}"])
    report = run(
        world,
        hook,
        f"""
        import httpx
        tls = ssl.create_default_context(cadata=context["secrets"]["CA"])
        with httpx.Client(verify=tls, timeout=5) as client:
            plain = client.get("http://{SLACK}:{world.http.port}/plain").json()
            secure = client.post("https://{SECURE}:{world.https.port}/tls", json={{"a": 1}}).json()
        return {{"https://t.example/paths": [plain["path"], secure["path"]]}}
        """,
        CA=world.ca,
    )
    assert report["outcome"] == "ok", "\n".join(line["text"] for line in report["console"])
    assert report["result"]["claims"]["https://t.example/paths"] == ["/plain", "/tls"]


def test_a_host_not_on_the_list_is_refused_with_a_reason(world: World) -> None:
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    report = run(
        world,
        hook,
        f"""
        try:
            urllib.request.urlopen("http://other.test.example:{world.http.port}/")
        except urllib.error.HTTPError as error:
            return {{"https://t.example/refusal": [error.code, error.read().decode()]}}
        """,
    )
    code, text = report["result"]["claims"]["https://t.example/refusal"]
    assert code == 403
    assert "other.test.example" in text
    assert "not in this hook's egress allowlist" in text
    assert "refused" in egress_lines(report)[0]


def test_a_hook_without_an_allowlist_has_no_network(world: World) -> None:
    hook = hook_with(world, [])
    report = run(
        world,
        hook,
        f"""
        try:
            urllib.request.urlopen("http://{SLACK}:{world.http.port}/")
        except urllib.error.HTTPError as error:
            return {{"https://t.example/refusal": error.read().decode()}}
        """,
    )
    assert "egress allowlist is empty" in report["result"]["claims"]["https://t.example/refusal"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("127.0.0.1", "IP address"),
        ("[::1]", "IP address"),
        ("10.0.0.1", "IP address"),
        ("169.254.169.254", "IP address"),
        ("localhost", "local"),
        ("0x7f.1", "IP address"),
        ("2130706433", "IP address"),
        ("0177.0.0.1", "IP address"),
        ("[::ffff:127.0.0.1]", "IP address"),
        ("localhost.", "local"),
    ],
)
def test_local_and_odd_targets_are_refused(world: World, target: str, reason: str) -> None:
    hook = hook_with(world, ["*.example.com", "api.example.org:80"])
    report = run(
        world,
        hook,
        f"""
        try:
            urllib.request.urlopen("http://{target}:80/")
        except urllib.error.HTTPError as error:
            return {{"https://t.example/refusal": [error.code, error.read().decode()]}}
        """,
    )
    code, text = report["result"]["claims"]["https://t.example/refusal"]
    assert code == 403, text
    assert reason in text, text


def test_no_way_around_the_broker(world: World) -> None:
    """Raw sockets, direct connections and the management API's own port get nowhere."""
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    port = world.server.url.rsplit(":", 1)[1]
    report = run(
        world,
        hook,
        f"""
        found = {{}}
        for name, family, kind, address in [
            ("raw", socket.AF_INET, socket.SOCK_RAW, None),
            ("packet", 17, socket.SOCK_RAW, None),
            ("management", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", {port})),
            ("outside", socket.AF_INET, socket.SOCK_STREAM, ("93.184.216.34", 80)),
            ("dns", socket.AF_INET, socket.SOCK_DGRAM, ("8.8.8.8", 53)),
        ]:
            try:
                s = socket.socket(family, kind)
            except OSError as error:
                found[name] = ["socket", error.errno]
                continue
            s.settimeout(2)
            try:
                s.connect(address)
                s.send(b"x")
                found[name] = ["connected"]
            except OSError as error:
                found[name] = ["connect", error.errno]
        try:
            urllib.request.urlopen("http://127.0.0.1:{port}/healthz")
        except urllib.error.HTTPError as error:
            found["via-broker"] = [error.code]
        return {{"https://t.example/found": found}}
        """,
    )
    found = report["result"]["claims"]["https://t.example/found"]
    assert found["raw"] == ["socket", 1]  # EPERM
    assert found["packet"] == ["socket", 1]
    assert found["management"][0] == "connect"  # the sandbox's loopback is its own
    assert found["outside"][0] == "connect"
    assert found["dns"] == ["socket", 1]  # no UDP at all
    assert found["via-broker"] == [403]


SOCKETS_AT_LOAD = """
import json, os, socket

def _sockets():
    # Every socket this process holds, the moment hook code starts to run.
    found = []
    for fd in range(1024):
        try:
            s = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            found.append([s.family.name, bool(listening)])
        except OSError:
            pass
        finally:
            s.detach()
    return found

AT_LOAD = _sockets()

def credentials_exchange(client, scope, audience, context):
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 3128))
        bind = "bound"
    except OSError as error:
        bind = error.errno
    found = {"at_load": AT_LOAD, "bind": bind, "door": os.path.exists("/run/egress.sock")}
    return {"https://t.example/found": found}
"""


def test_the_hook_never_holds_the_brokers_listener_nor_its_door(world: World) -> None:
    """The worker handed its loopback listener to the broker, and closed its door to
    the broker, before loading the hook: from its first line, hook code holds no
    socket at all, cannot take the listener's port, and has no way to send the
    server a descriptor. Several fresh workers, since the handover races the load."""
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    for _ in range(5):
        with world.server.api() as api:  # unsaved code: a fresh worker each time
            response = api.post(f"/hooks/{hook}/test", json={"script": SOCKETS_AT_LOAD})
        assert response.status_code == 200, response.text
        found = response.json()["result"]["claims"]["https://t.example/found"]
        assert found == {"at_load": [], "bind": errno.EADDRINUSE, "door": False}


def test_bad_clients_inside_the_sandbox_are_contained(world: World) -> None:
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    report = run(
        world,
        hook,
        f"""
        def ask(data):
            s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
            s.sendall(data)
            answer = s.recv(4096).decode(errors="replace")
            s.close()
            return answer.split("\\r\\n")[0]
        found = {{
            "garbage": ask(b"GARBAGE\\r\\n\\r\\n"),
            "huge": ask(
                b"GET http://{SLACK}:{world.http.port}/ HTTP/1.1\\r\\nX: "
                + b"a" * 20000
                + b"\\r\\n\\r\\n"
            ),
            "connect-without-port": ask(b"CONNECT {SLACK} HTTP/1.1\\r\\n\\r\\n"),
        }}
        # A slowloris: half a request head, left open as the call ends.
        slow = socket.create_connection(("127.0.0.1", 3128))
        slow.sendall(b"GET http://{SLACK}:{world.http.port}/ HTTP/1.1\\r\\nHost: x")
        many = []
        for _ in range(14):  # with the four above, two past the cap of 16
            s = socket.create_connection(("127.0.0.1", 3128))
            s.sendall(b"GET http://{SLACK}:{world.http.port}/many HTTP/1.1\\r\\n\\r\\n")
            many.append(s)
        found["many"] = sorted(set(s.recv(4096).decode().split("\\r\\n")[0] for s in many))
        return {{"https://t.example/found": found}}
        """,
    )
    assert report["outcome"] == "ok", "\n".join(line["text"] for line in report["console"])
    found = report["result"]["claims"]["https://t.example/found"]
    assert found["garbage"] == "HTTP/1.1 400 Bad Request: malformed request line 'GARBAGE'"
    assert found["huge"].startswith("HTTP/1.1 431 Request Header Fields Too Large: ")
    assert found["connect-without-port"].startswith("HTTP/1.1 400 Bad Request: CONNECT needs")
    assert found["many"] == [
        "HTTP/1.0 200 OK",
        "HTTP/1.1 429 Too Many Requests: more than 16 connections in one call",
    ]
    lines = egress_lines(report)
    assert any("more than 16 connections in one call" in line for line in lines)
    assert any("malformed request line" in line for line in lines)
    # The broker is fine afterwards: another call gets through.
    again = run(
        world,
        hook,
        f"""
        with urllib.request.urlopen("http://{SLACK}:{world.http.port}/after") as answer:
            return {{"https://t.example/ok": json.loads(answer.read())["ok"]}}
        """,
    )
    assert again["result"]["claims"]["https://t.example/ok"] is True


def test_allowlist_entries_are_checked_when_saved(world: World) -> None:
    with world.server.api() as api:
        for bad in ["127.0.0.1", "*", "*.com", "http://api.slack.com/", "localhost", "a..b"]:
            response = api.post(
                "/hooks",
                json={
                    "name": unique("bad"),
                    "script": NOTHING,
                    "triggerId": "credentials-exchange",
                    "egress": [bad],
                },
            )
            assert response.status_code == 400, (bad, response.text)
        created = api.post(
            "/hooks",
            json={
                "name": unique("good"),
                "script": "def credentials_exchange(client, scope, audience, context):\n    pass\n",
                "triggerId": "credentials-exchange",
                "egress": ["API.Slack.com", "*.hubspot.com:8443", "api.slack.com:443"],
            },
        )
        assert created.json()["egress"] == ["api.slack.com:443", "*.hubspot.com:8443"]


def test_a_signup_reaches_slack_through_the_broker(world: World) -> None:
    script = f"""
import json, urllib.request

def post_user_registration(user, context):
    request = urllib.request.Request(
        "http://{SLACK}:{world.http.port}/services/T000/B000",
        data=json.dumps({{"text": "New user: " + user["email"]}}).encode(),
        headers={{"Content-Type": "application/json"}},
    )
    with urllib.request.urlopen(request) as answer:
        print("slack answered", answer.status)
"""
    with world.server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("slack"),
                "script": script,
                "triggerId": "post-user-registration",
                "enabled": True,
                "egress": [f"{SLACK}:{world.http.port}"],
            },
        )
        assert created.status_code == 201, created.text
    time.sleep(0.3)
    app = create_app(world.server)
    email = new_email()
    assert signup(world.server, app["client_id"], email).status_code == 200
    posted = wait_for(
        lambda: [r for r in world.http.received.requests if r["path"] == "/services/T000/B000"]
    )
    assert json.loads(posted[-1]["body"]) == {"text": "New user: " + email}
    with world.server.api() as api:
        api.patch(f"/hooks/{created.json()['id']}", json={"enabled": False})


def test_a_flood_of_attempts_stays_a_few_log_lines(world: World) -> None:
    hook = hook_with(world, [f"{SLACK}:{world.http.port}"])
    report = run(
        world,
        hook,
        """
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", 3128))
            s.sendall(b"X\\r\\n\\r\\n")
            s.recv(100)
            s.close()
        """,
    )
    lines = egress_lines(report)
    assert len(lines) <= 51
    assert lines[-1].endswith("more connections, not listed")
