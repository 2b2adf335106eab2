"""JavaScript hooks reach the network as Python hooks do, through the egress broker
only, with no change to their code: fetch, Node's http and https modules, and axios
(a declared dependency, installed from the npm registry) all go through the broker,
per the hook's allowlist, and HTTPS verifies with the server's CA bundle."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Server, reachable_directory, run_server, unique
from tests.egress import servers

PLAIN = "plain.test.example"
SECURE = "secure.test.example"
NOTHING = "module.exports = function (client, scope, audience, context, cb) {\n  cb();\n};\n"


@dataclass
class World:
    server: Server
    http: servers.TestServer
    https: servers.TestServer

    @property
    def allowed(self) -> list[str]:
        return [f"{PLAIN}:{self.http.port}", f"{SECURE}:{self.https.port}"]

    @property
    def urls(self) -> tuple[str, str]:
        return f"http://{PLAIN}:{self.http.port}", f"https://{SECURE}:{self.https.port}"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """A server whose hooks' CA bundle holds the CA of a local HTTPS server, with a
    dependency store its workers can read."""
    public = reachable_directory("authhooks-node-egress-")
    ca, tls = servers.certificate_authority(SECURE, public)
    bundle = public / "bundle.pem"
    bundle.write_text(ca)
    bundle.chmod(0o644)
    http, https = servers.start(), servers.start(tls)
    overrides = f"{PLAIN}=127.0.0.1:{http.port},{SECURE}=127.0.0.1:{https.port}"
    try:
        with run_server(
            public,
            "sqlite",
            egress_test_overrides=overrides,
            hook_ca_bundle=str(bundle),
            dependency_dir=public / "dependencies",
        ) as server:
            yield World(server, http, https)
    finally:
        http.close()
        https.close()
        shutil.rmtree(public, ignore_errors=True)


def create(world: World, egress: list[str], **fields: Any) -> str:
    with world.server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("node-egress"),
                "script": NOTHING,
                "triggerId": "credentials-exchange",
                "egress": egress,
                **fields,
            },
            timeout=180,
        )
    assert response.status_code == 201, response.text
    hook_id: str = response.json()["id"]
    return hook_id


def run(world: World, hook_id: str, body: str) -> dict[str, Any]:
    """Run ``body`` as an async Hooks function whose return value is the claim
    ``https://t.example/got``."""
    script = (
        "const http = require('http');\nconst https = require('https');\n"
        "module.exports = async function (client, scope, audience, context) {\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "  ")
        + "\n};\n"
    )
    with world.server.api() as api:
        response = api.post(f"/hooks/{hook_id}/test", json={"script": script}, timeout=60)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def got(report: dict[str, Any]) -> Any:
    console = "\n".join(line["text"] for line in report["console"])
    assert report["outcome"] == "ok", (report.get("error"), console)
    return report["result"]["claims"]["https://t.example/got"]


def egress_lines(report: dict[str, Any]) -> list[str]:
    return [line["text"] for line in report["console"] if line["stream"] == "egress"]


def test_fetch_over_http_and_https(world: World) -> None:
    plain, secure = world.urls
    report = run(
        world,
        create(world, world.allowed),
        f"""
        const first = await (await fetch('{plain}/fetched?x=1')).json();
        const second = await fetch('{secure}/tls', {{
          method: 'POST', body: JSON.stringify({{ a: 1 }}),
          headers: {{ 'content-type': 'application/json' }},
        }});
        return {{ 'https://t.example/got': [first.path, (await second.json()).path] }};
        """,
    )
    assert got(report) == ["/fetched?x=1", "/tls"]
    lines = egress_lines(report)
    # fetch tunnels plain HTTP too (CONNECT), as undici's ProxyAgent does.
    assert any(f" {PLAIN}:{world.http.port} -> 127.0.0.1:" in line for line in lines), lines
    assert any(line.startswith(f"egress CONNECT {SECURE}:{world.https.port}") for line in lines)


def test_node_http_and_https_modules(world: World) -> None:
    plain, secure = world.urls
    report = run(
        world,
        create(world, world.allowed),
        f"""
        const get = (module, url) => new Promise((resolve, reject) => {{
          module.get(url, (answer) => {{
            let text = '';
            answer.setEncoding('utf8');
            answer.on('data', (chunk) => {{ text += chunk; }});
            answer.on('end', () => resolve(JSON.parse(text).path));
          }}).on('error', reject);
        }});
        return {{ 'https://t.example/got': [
          await get(http, '{plain}/by-http'), await get(https, '{secure}/by-https'),
        ] }};
        """,
    )
    assert got(report) == ["/by-http", "/by-https"]


def test_axios_as_a_dependency_works_unchanged(world: World) -> None:
    plain, secure = world.urls
    hook = create(world, world.allowed, dependencies={"axios": "1.7.9"})
    report = run(
        world,
        hook,
        f"""
        const axios = require('axios');
        const first = await axios.get('{plain}/by-axios');
        const second = await axios.post('{secure}/by-axios-tls', {{ a: 1 }});
        return {{ 'https://t.example/got': [first.data.path, second.data.path] }};
        """,
    )
    assert got(report) == ["/by-axios", "/by-axios-tls"]
    # Both went through the broker: HTTPS as a tunnel, so it was never in the clear.
    lines = egress_lines(report)
    assert any(line.startswith(f"egress CONNECT {SECURE}:{world.https.port}") for line in lines)


def test_a_host_not_on_the_list_is_refused_with_a_reason(world: World) -> None:
    _, secure = world.urls
    report = run(
        world,
        create(world, [f"{PLAIN}:{world.http.port}"]),
        f"""
        try {{
          await fetch('{secure}/refused');
          return {{ 'https://t.example/got': 'reached' }};
        }} catch (error) {{
          return {{ 'https://t.example/got': String(error.cause || error) }};
        }}
        """,
    )
    assert got(report) != "reached"
    assert world.https.received.requests == [] or all(
        request["path"] != "/refused" for request in world.https.received.requests
    )
    assert any("refused" in line and SECURE in line for line in egress_lines(report)), report


def test_a_hook_without_an_allowlist_has_no_network(world: World) -> None:
    plain, _ = world.urls
    report = run(
        world,
        create(world, []),
        f"""
        const found = [];
        try {{
          found.push((await fetch('{plain}/none')).status);
        }} catch (error) {{
          found.push('refused');
        }}
        found.push(await new Promise((resolve) => {{
          http.get('{plain}/none', (answer) => resolve(answer.statusCode))
            .on('error', () => resolve('refused'));
        }}));
        return {{ 'https://t.example/got': found }};
        """,
    )
    # The broker answers a plain HTTP request itself (403); a tunnel it refuses.
    assert all(found in (403, "refused") for found in got(report)), report
    assert all(request["path"] != "/none" for request in world.http.received.requests)
