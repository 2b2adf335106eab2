"""Every sandbox has a CA bundle, read-only, and SSL_CERT_FILE pointing at it: HTTPS
from a hook verifies the server with the standard library's clients as they come,
urllib.request and http.client included (only httpx used to find one, certifi's)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from authhooks.egress.broker import Broker
from authhooks.egress.rules import parse_rule
from authhooks.runtime.outcome import Outcome
from authhooks.runtime.sandbox import Limits, Sandbox, SandboxSettings, SandboxUnavailable
from authhooks.runtime.supervisor import CodeVersion, Runtime, RuntimeSettings
from tests.egress import servers

SECURE = "secure.test.example"


@pytest.fixture(scope="module")
def public() -> Iterator[Path]:
    """A directory every uid can read, as a bundle bound into sandboxes must be."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)  # noqa: S103 - the workers, on other uids, read from it
        yield Path(directory)


@pytest.fixture(scope="module")
def https(public: Path) -> Iterator[tuple[servers.TestServer, Path]]:
    """A local HTTPS server for SECURE, and a bundle holding the CA that signed it."""
    ca, tls = servers.certificate_authority(SECURE, public)
    bundle = public / "bundle.pem"
    bundle.write_text(ca)
    bundle.chmod(0o644)
    server = servers.start(tls)
    yield server, bundle
    server.close()


def run(source: str, port: int, ca_bundle: str) -> Outcome:
    async def call() -> Outcome:
        runtime = Runtime(
            RuntimeSettings(sandbox=SandboxSettings(ca_bundle=ca_bundle)),
            Broker(overrides={SECURE: ("127.0.0.1", port)}),
        )
        await runtime.start()
        try:
            version = CodeVersion(f"ca:{port}:{ca_bundle}", textwrap.dedent(source), "hook")
            return await runtime.invoke(
                version, {"port": port}, egress=[parse_rule(f"{SECURE}:{port}")], timeout=10
            )
        finally:
            await runtime.close()

    return asyncio.run(call())


FETCH = f"""
    import http.client, json, ssl, urllib.request
    def hook(port):
        found = {{"cas": ssl.create_default_context().cert_store_stats()["x509_ca"]}}
        try:
            with urllib.request.urlopen(f"https://{SECURE}:{{port}}/urllib") as answer:
                found["urllib"] = json.loads(answer.read())["path"]
        except Exception as error:
            found["urllib"] = repr(error)
        connection = http.client.HTTPSConnection("127.0.0.1", 3128, timeout=5)
        connection.set_tunnel("{SECURE}", port)
        try:
            connection.request("GET", "/http.client")
            found["http.client"] = json.loads(connection.getresponse().read())["path"]
        except Exception as error:
            found["http.client"] = repr(error)
        return found
"""


def test_https_from_a_hook_verifies_with_the_bundle_set(
    https: tuple[servers.TestServer, Path],
) -> None:
    server, bundle = https
    outcome = run(FETCH, server.port, str(bundle))
    assert outcome.result == {"cas": 1, "urllib": "/urllib", "http.client": "/http.client"}


def test_a_server_the_bundle_does_not_vouch_for_is_refused(
    https: tuple[servers.TestServer, Path], public: Path
) -> None:
    server, _ = https
    (public / "other").mkdir(exist_ok=True)
    other, _ = servers.certificate_authority("other.test.example", public / "other")
    unrelated = public / "unrelated.pem"
    unrelated.write_text(other)
    unrelated.chmod(0o644)
    outcome = run(FETCH, server.port, str(unrelated))
    assert outcome.result is not None, outcome
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.result["urllib"]
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.result["http.client"]


def test_the_system_bundle_by_default() -> None:
    sandbox = Sandbox(SandboxSettings(), Limits())
    sandbox.close()
    assert sandbox.ca_bundle is not None
    assert sandbox.ca_bundle.read_text().count("BEGIN CERTIFICATE") > 10


def test_a_bundle_that_is_not_there_stops_the_start(public: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="CA bundle"):
        Sandbox(SandboxSettings(ca_bundle=str(public / "missing.pem")), Limits())


def test_a_bundle_workers_cannot_read_stops_the_start(tmp_path: Path) -> None:
    probe = Sandbox(SandboxSettings(), Limits())
    probe.close()
    if not probe.separate_uids:
        pytest.skip("workers run on the server's uid here, which reads what it reads")
    bundle = tmp_path / "bundle.pem"  # in a directory only its owner enters
    bundle.write_text(probe.ca_bundle.read_text() if probe.ca_bundle else "")
    with pytest.raises(SandboxUnavailable, match="cannot read the CA bundle"):
        Sandbox(SandboxSettings(ca_bundle=str(bundle)), Limits())
