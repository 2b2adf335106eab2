"""`authhooks master-key rotate`: everything sealed with the old key is sealed with
a new one; after a restart every client secret, signing key, hook secret and
captured event works as before, and the old key opens nothing."""

from __future__ import annotations

import base64
import hmac
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from authhooks.masterkey import KEY_FILE, MasterKey, MasterKeyError
from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import AUTHHOOKS, Server, create_machine, run_server, serve_again, unique
from tests.users.helpers import wait_for

CLAIM = (
    "def credentials_exchange(client, scope, audience, context):\n"
    "    return {'https://example.com/tier': context['secrets']['TIER']}\n"
)


def rotate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AUTHHOOKS, "master-key", "rotate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tier(server: Server, machine: Any) -> tuple[str, str]:
    """The hook's claim in a fresh token, and the token's signing key id."""
    issued = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    keys = jwt.PyJWKClient(server.url + "/.well-known/jwks.json")
    claims = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=machine.audience,
    )
    return claims["https://example.com/tier"], jwt.get_unverified_header(token)["kid"]


def test_rotation_reseals_everything(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as first:
        machine = create_machine(first)
        with first.api() as api:
            hook = api.post(
                "/hooks",
                json={
                    "name": unique("sealed"),
                    "triggerId": "credentials-exchange",
                    "script": CLAIM,
                    "capture_events": True,
                },
            ).json()
            assert api.post(f"/hooks/{hook['id']}/secrets", json={"TIER": "gold"}).status_code < 300
            assert api.patch(f"/hooks/{hook['id']}", json={"enabled": True}).status_code == 200
        claim, kid = tier(first, machine)
        assert claim == "gold"
        with first.api() as api:  # a git source: its webhook secret and token are sealed
            source = api.post(
                "/git-sources",
                json={
                    "name": unique("sealed"),
                    "repository": "https://git.example.com/team/hooks.git",
                    "credentials": {"token": "t" * 20},
                },
            ).json()
        with first.api() as api:  # the invocation record, with its captured event, is stored
            invocation = wait_for(
                lambda: api.get("/logs", params={"hook_id": hook["id"]}).json()["logs"]
            )[0]
        key_file = first.data_dir / KEY_FILE
        old_key = key_file.read_text()
        assert first.process is not None
        first.process.terminate()
        first.process.wait(timeout=15)

        rotated = rotate(first.env)
        assert rotated.returncode == 0, rotated.stderr
        assert "resealed 1 signing keys, 1 hook secrets, 1 captured events" in rotated.stderr
        assert "1 git sources" in rotated.stderr
        assert key_file.read_text() != old_key
        assert not key_file.with_name(KEY_FILE + ".new").exists()
        assert old_key.strip() not in rotated.stderr + rotated.stdout

        with serve_again(first, tmp_path) as second:
            assert tier(second, machine) == ("gold", kid)  # same client secret, same key
            ping = b"{}"
            signature = hmac.new(source["webhook_secret"].encode(), ping, "sha256").hexdigest()
            pong = httpx.post(
                f"{second.url}/git/webhooks/{source['id']}",
                content=ping,
                headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": f"sha256={signature}"},
            )
            assert pong.status_code == 200, pong.text  # the webhook secret opened
            with second.api() as api:
                replayed = api.post(
                    f"/hooks/{hook['id']}/test", json={"replay": invocation["id"]}
                ).json()
            assert replayed["outcome"] == "ok", replayed
            # The secret opened (the runner shows its value redacted, as always).
            assert replayed["result"]["claims"]["https://example.com/tier"] == "***"

            database = Database(second.database_url)
            try:
                with database.session() as session:
                    secret = session.scalars(select(models.HookSecret)).one()
                old = MasterKey(base64.b64decode(old_key))
                with pytest.raises(MasterKeyError):
                    old.decrypt(secret.value, f"hook-secret:{hook['id']}:TIER".encode())
            finally:
                database.dispose()


def test_a_wrong_key_changes_nothing(tmp_path: Path) -> None:
    with run_server(tmp_path, "sqlite") as server:
        assert server.process is not None
        server.process.terminate()
        server.process.wait(timeout=15)
        key_file = server.data_dir / KEY_FILE
        kept = key_file.read_text()
        key_file.write_text("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n")  # not the key
        refused = rotate(server.env)
        assert refused.returncode == 2
        assert "master key" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not key_file.with_name(KEY_FILE + ".new").exists()
        # A server given another key (a database restored without its key) stops at once.
        started = subprocess.run(
            [*AUTHHOOKS, "init"], env=server.env, capture_output=True, text=True, timeout=60
        )
        assert started.returncode == 2
        assert "does not open with this master key" in started.stderr
        key_file.write_text(kept)
        # From the environment, the new key needs a place to go.
        from_env = {**server.env, "AUTHHOOKS_MASTER_KEY": kept.strip()}
        assert rotate(from_env).returncode == 2
        target = tmp_path / "new.key"
        moved = rotate(from_env, "--output", str(target))
        assert moved.returncode == 0, moved.stderr
        assert target.stat().st_mode & 0o777 == 0o600
        assert key_file.read_text() == kept  # the file was not the key in use
        with serve_again(server, tmp_path, master_key=target.read_text().strip()) as again:
            assert httpx.get(again.url + "/readyz").status_code == 200
            assert again.management_token()


def test_an_upgrade_with_another_key_stops_before_sealing_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
    env["AUTHHOOKS_DATA_DIR"] = str(tmp_path / "data")

    def init(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*AUTHHOOKS, "init"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert init().returncode == 0
    database = Database(f"sqlite:///{tmp_path / 'data' / 'authhooks.db'}")
    try:
        with database.session() as session:  # as a database from before sealed keys
            session.query(models.SealedKey).delete()
    finally:
        database.dispose()
    other = base64.b64encode(b"k" * 32).decode()
    refused = init(AUTHHOOKS_MASTER_KEY=other)
    assert refused.returncode == 2
    assert "does not open with this master key" in refused.stderr
    assert init().returncode == 0  # the right key seals it, and the admin still works
