"""`make run` as a user runs it: it serves, prints the issuer and where the admin's
credentials are, and a real OAuth client gets a token that verifies against JWKS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import jwt
from authlib.integrations.httpx_client import OAuth2Client

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_serves_and_an_oauth_client_gets_a_token(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
    env.update(
        {
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_DATA_DIR": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    log = tmp_path / "make-run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        printed = _wait_for(log, "Issuer:", process)
        issuer = re.search(r"Issuer: (\S+)", printed).group(1)  # type: ignore[union-attr]
        client_id = re.search(r"client_id (\S+);", printed).group(1)  # type: ignore[union-attr]
        # Not a terminal (a log, perhaps): the secret is in the file, never printed.
        saved = json.loads((tmp_path / "data" / "bootstrap-admin.json").read_text())
        assert saved["client_id"] == client_id
        secret = saved["client_secret"]
        assert secret not in printed
        assert issuer == f"http://127.0.0.1:{port}/"
        _wait_ready(issuer)

        with OAuth2Client(client_id, secret) as oauth:
            token = oauth.fetch_token(
                issuer + "oauth/token", grant_type="client_credentials", audience=issuer + "api/v2/"
            )
        jwks = jwt.PyJWKClient(issuer + ".well-known/jwks.json")
        key = jwks.get_signing_key_from_jwt(token["access_token"])
        claims = jwt.decode(
            token["access_token"],
            key.key,
            algorithms=["RS256"],
            audience=issuer + "api/v2/",
            issuer=issuer,
        )
        assert claims["client_id"] == client_id
        listed = httpx.get(
            issuer + "api/v2/clients", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert [client["client_id"] for client in listed.json()] == [client_id]

        # It built the dashboard, which the server serves itself.
        page = httpx.get(issuer + "dashboard")
        assert page.status_code == 200
        assert httpx.get(issuer + "dashboard/static/app.js").status_code == 200

        # It leaves a ready profile: the CLI works with no login.
        cli = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "authhooks"), "ls", "--all", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.strip() == "[]"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _wait_for(log: Path, marker: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 300  # a fresh machine installs packages first
    while time.monotonic() < deadline:
        text = log.read_text()
        if marker in text:
            return text
        assert process.poll() is None, f"make run exited:\n{text}"
        time.sleep(0.2)
    raise AssertionError(f"make run printed no {marker!r}:\n{log.read_text()}")


def _wait_ready(issuer: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(issuer + "readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")
