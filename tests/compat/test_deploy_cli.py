"""Auth0's Deploy CLI (auth0-deploy-cli, from npm) against authhooks behind TLS:
``a0deploy export`` reads every resource type it knows, and completes — what
authhooks has (clients, APIs, grants, hooks, the database connection, tenant
settings) exported as it is, what it does not have (rules, flows, MFA, …)
exported as none; ``a0deploy import`` of that export, unchanged, succeeds and
changes nothing: a second export is byte for byte the first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.compat.conftest import Tls
from tests.conftest import Server, unique

A0DEPLOY = Path(__file__).parent / "node_modules" / ".bin" / "a0deploy"

HOOK = """
module.exports = function (client, scope, audience, context, cb) {
  cb(null, { scope });
};
"""


def a0deploy(server: Server, tls: Tls, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = work / "config.json"
    config.write_text(
        json.dumps(
            {
                "AUTH0_DOMAIN": server.url.removeprefix("https://"),
                "AUTH0_CLIENT_ID": server.admin_id,
                "AUTH0_CLIENT_SECRET": server.admin_secret,
                "AUTH0_AUDIENCE": server.management_audience,
            }
        )
    )
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tls.ca), "NO_COLOR": "1"}
    return subprocess.run(
        [str(A0DEPLOY), *args, "-c", str(config)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_export_imports_back_unchanged(tls_server: Server, tls: Tls, tmp_path: Path) -> None:
    audience = f"https://{unique('api')}.example.com/"
    with tls_server.api() as api:
        made_api = api.post(
            "/resource-servers",
            json={
                "name": unique("notes"),
                "identifier": audience,
                "scopes": [{"value": "read:notes"}],
            },
        )
        assert made_api.status_code == 201, made_api.text
        client = api.post("/clients", json={"name": unique("worker")}).json()
        web = api.post(
            "/clients",
            json={
                "name": unique("web"),
                "app_type": "regular_web",
                "callbacks": ["https://app.example.com/callback"],
                "oidc_conformant": True,
                "jwt_configuration": {"alg": "RS256"},
            },
        )
        assert web.status_code == 201, web.text
        granted = api.post(
            "/client-grants",
            json={"client_id": client["client_id"], "audience": audience, "scope": ["read:notes"]},
        )
        assert granted.status_code == 201, granted.text
        hook = api.post(
            "/hooks",
            json={"name": unique("exchange"), "triggerId": "credentials-exchange", "script": HOOK},
        )
        assert hook.status_code == 201, hook.text

    exported = a0deploy(tls_server, tls, tmp_path, "export", "-f", "yaml", "-o", "export")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    tenant = yaml.safe_load((tmp_path / "export" / "tenant.yaml").read_text())
    assert any(each["identifier"] == audience for each in tenant["resourceServers"])
    assert any(each["name"] == client["name"] for each in tenant["clients"])
    assert any(grant["audience"] == audience for grant in tenant["clientGrants"])
    assert any(hook.json()["name"] == each["name"] for each in tenant["hooks"])
    (database,) = tenant["databases"]
    assert database["name"] == "Username-Password-Authentication"
    assert database["strategy"] == "auth0"
    assert tenant["rules"] == []
    assert tenant["rulesConfigs"] == []

    imported = a0deploy(tls_server, tls, tmp_path, "import", "-i", "export/tenant.yaml")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    again = a0deploy(tls_server, tls, tmp_path, "export", "-f", "yaml", "-o", "again")
    assert again.returncode == 0, again.stdout + again.stderr
    first = (tmp_path / "export" / "tenant.yaml").read_text()
    assert (tmp_path / "again" / "tenant.yaml").read_text() == first
