"""Real servers for the tests: ``authhooks serve`` in a subprocess on a free
loopback port, on SQLite and, when AUTHHOOKS_TEST_DATABASE_URL is set, on
PostgreSQL in a fresh schema per server."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

PG_URL = os.environ.get("AUTHHOOKS_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
AUTHHOOKS = [sys.executable, "-m", "authhooks"]
# Short, so tests of cross-process invalidation wait little.
CACHE_TTL = 0.2
# pytest-xdist's workers run with COLUMNS=80 and LINES set: a rich console made
# when the CLI is imported would keep that width for good, and cut its tables.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose connections live in a new schema, dropped afterwards."""
    schema = f"authhooks_test_{secrets.token_hex(6)}"
    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class Server:
    url: str
    env: dict[str, str]
    data_dir: Path
    admin_id: str
    admin_secret: str
    backend: str
    process: subprocess.Popen[bytes] | None = None
    issuer_url: str | None = None  # when it is not the server's own URL
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.issuer_url or self.url + "/"

    @property
    def database_url(self) -> str:
        return (
            self.env.get("AUTHHOOKS_DATABASE_URL") or f"sqlite:///{self.data_dir / 'authhooks.db'}"
        )

    @property
    def management_audience(self) -> str:
        return self.issuer + "api/v2/"

    def token(self, client_id: str, client_secret: str, **params: str) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            **params,
        }
        # A hook may run for up to 20 s; the client must not give up before it on a busy machine.
        return httpx.post(self.url + "/oauth/token", data=data, timeout=30)

    def management_token(self, scope: str | None = None) -> str:
        key = scope or "*"
        if key not in self._tokens:
            params = {"audience": self.management_audience}
            if scope:
                params["scope"] = scope
            response = self.token(self.admin_id, self.admin_secret, **params)
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    def api(self, scope: str | None = None) -> httpx.Client:
        """A management API client whose token carries ``scope`` (all scopes when None)."""
        # Creating a hook loads it in a sandbox (a cold Node.js start, say): on a
        # machine busy with other tests that takes longer than httpx's 5 s default.
        return httpx.Client(
            base_url=self.url + "/api/v2",
            headers={"Authorization": f"Bearer {self.management_token(scope)}"},
            timeout=30,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*AUTHHOOKS, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


# Cheap argon2 and quick retries: the suite measures behaviour, not cost.
FAST_USERS = {
    "AUTHHOOKS_ARGON2_TIME_COST": "1",
    "AUTHHOOKS_ARGON2_MEMORY_COST": "8192",
    "AUTHHOOKS_ARGON2_PARALLELISM": "1",
    "AUTHHOOKS_DELIVERY_BACKOFF": "0.2",
    "AUTHHOOKS_DELIVERY_POLL_INTERVAL": "0.2",
    # Every test signs up from 127.0.0.1; the cap itself has a test of its own.
    "AUTHHOOKS_SIGNUP_MAX_PER_IP": "1000000",
}


@contextmanager
def run_server(tmp_path: Path, backend: str, **settings: Any) -> Iterator[Server]:
    """Start ``authhooks serve`` with the given settings and wait until it is ready."""
    with postgres_schema() if backend == "postgresql" else _nothing() as database_url:
        port = free_port()
        data_dir = tmp_path / f"data-{port}"
        env = {
            **os.environ,
            **FAST_USERS,
            "AUTHHOOKS_PORT": str(port),
            "AUTHHOOKS_DATA_DIR": str(data_dir),
            "AUTHHOOKS_CACHE_TTL": str(CACHE_TTL),
            "AUTHHOOKS_LOG_LEVEL": "warning",
        }
        env.pop("AUTHHOOKS_CONFIG", None)
        if database_url:
            env["AUTHHOOKS_DATABASE_URL"] = database_url
        env.update({f"AUTHHOOKS_{name.upper()}": str(value) for name, value in settings.items()})
        with _serve(env, backend, tmp_path) as running:
            yield running


@contextmanager
def serve_again(server: Server, tmp_path: Path, **settings: Any) -> Iterator[Server]:
    """Another server process on ``server``'s database and data dir, with its issuer."""
    env = {**server.env, "AUTHHOOKS_PORT": str(free_port()), "AUTHHOOKS_ISSUER": server.issuer}
    env.update({f"AUTHHOOKS_{name.upper()}": str(value) for name, value in settings.items()})
    with _serve(env, server.backend, tmp_path) as running:
        yield running


@contextmanager
def _serve(env: dict[str, str], backend: str, tmp_path: Path) -> Iterator[Server]:
    port = env["AUTHHOOKS_PORT"]
    data_dir = Path(env["AUTHHOOKS_DATA_DIR"])
    log = tmp_path / f"server-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*AUTHHOOKS, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        scheme = "https" if env.get("AUTHHOOKS_TLS_CERTFILE") else "http"
        url = f"{scheme}://127.0.0.1:{port}"
        _wait_ready(url, process, log)
        admin = json.loads((data_dir / "bootstrap-admin.json").read_text())
        yield Server(
            url,
            env,
            data_dir,
            admin["client_id"],
            admin["client_secret"],
            backend,
            process,
            env.get("AUTHHOOKS_ISSUER"),
        )
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server shared by the tests of one backend; each test names its objects uniquely."""
    with run_server(tmp_path_factory.mktemp(request.param), request.param) as running:
        yield running


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """For tests that start their own server with particular settings."""
    return str(request.param)


def reachable_directory(prefix: str) -> Path:
    """A directory every user can reach: the sandbox's workers bind store entries
    as uids of their own, and pytest's temporary directories are closed to them."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Machine:
    """A client with a grant for an API, ready to ask for tokens."""

    client_id: str
    client_secret: str
    audience: str
    grant_id: str

    def token_form(self) -> dict[str, str]:
        """The form of a client-credentials token request (client_secret_post)."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "audience": self.audience,
        }


def create_machine(
    server: Server,
    scopes: list[str] | None = None,
    granted: list[str] | None = None,
    **api_fields: Any,
) -> Machine:
    """An API defining ``scopes``, a client, and a grant of ``granted`` (default: all)."""
    scopes = ["read:things", "write:things", "delete:things"] if scopes is None else scopes
    granted = scopes if granted is None else granted
    audience = f"https://{unique('api')}.example.com/"
    with server.api() as api:
        response = api.post(
            "/resource-servers",
            json={
                "name": unique("api"),
                "identifier": audience,
                "scopes": [{"value": value} for value in scopes],
                **api_fields,
            },
        )
        assert response.status_code == 201, response.text
        client = api.post("/clients", json={"name": unique("machine")})
        assert client.status_code == 201, client.text
        grant = api.post(
            "/client-grants",
            json={
                "client_id": client.json()["client_id"],
                "audience": audience,
                "scope": granted,
            },
        )
        assert grant.status_code == 201, grant.text
    return Machine(
        client.json()["client_id"], client.json()["client_secret"], audience, grant.json()["id"]
    )
