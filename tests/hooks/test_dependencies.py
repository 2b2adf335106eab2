"""npm dependencies of JavaScript hooks, end to end: declared through the management
API, installed by real npm from the public registry (or a registry of the test's
own) into the content-addressed store when the hook is saved, shared, bound into
the sandbox, rolled back with their version; and every bad input a 400 that
leaves the live version as it was."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.api.helpers import assert_api_error
from tests.conftest import (
    BACKENDS,
    Server,
    create_machine,
    reachable_directory,
    run_server,
    unique,
)

# Installs and the first load of a worker can take a while on a busy machine.
SLOW = 120


@pytest.fixture(scope="module")
def store() -> Iterator[Path]:
    path = reachable_directory("authhooks-deps-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, store: Path
) -> Iterator[Server]:
    """A server installing from the public registry into ``store``."""
    with run_server(
        tmp_path_factory.mktemp(request.param), request.param, dependency_dir=store
    ) as running:
        yield running


def create(server: Server, script: str, **fields: Any) -> dict[str, Any]:
    response = post_hook(server, script, **fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def post_hook(server: Server, script: str, **fields: Any) -> Any:
    with server.api() as api:
        return api.post(
            "/hooks",
            json={
                "name": unique("deps"),
                "script": script,
                "triggerId": "credentials-exchange",
                **fields,
            },
            timeout=SLOW,
        )


def patch(server: Server, hook_id: str, **fields: Any) -> Any:
    with server.api() as api:
        return api.patch(f"/hooks/{hook_id}", json=fields, timeout=SLOW)


def run(server: Server, hook_id: str, **trial: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(f"/hooks/{hook_id}/test", json=trial, timeout=SLOW)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def get(server: Server, hook_id: str) -> dict[str, Any]:
    with server.api() as api:
        response = api.get(f"/hooks/{hook_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def installed_keys(server: Server, hook_id: str) -> dict[int, str | None]:
    """Each version's key in the dependency store, as stored."""
    database = Database(server.database_url)
    try:
        with database.session() as session:
            rows = session.execute(
                select(models.HookVersion.number, models.HookVersion.installed).where(
                    models.HookVersion.hook_id == hook_id
                )
            ).all()
    finally:
        database.dispose()
    return dict(rows)  # number -> installed


# Claims from a package: its own version, read through require, and what it computes.
VERSION_HOOK = """
const isNumber = require('is-number');
module.exports = function (client, scope, audience, context, cb) {
  cb(null, {
    'https://example.com/is-number': require('is-number/package.json').version,
    'https://example.com/checks': [isNumber('12'), isNumber('twelve')],
  });
};
"""
# Webtask's habit: the package named with its version.
PINNED_HOOK = "const pinned = require('is-number@7.0.0');\n" + VERSION_HOOK.replace(
    "isNumber('twelve')]", "isNumber('twelve'), pinned(5)]"
)


def test_a_declared_package_is_installed_and_used_by_the_hook(server: Server) -> None:
    hook = create(server, PINNED_HOOK, dependencies={"is-number": "7.0.0"})
    assert hook["runtime"] == "node"
    assert hook["dependencies"] == {"is-number": "7.0.0"}
    [package] = hook["resolved"]
    assert (package["name"], package["version"]) == ("is-number", "7.0.0")
    assert package["integrity"].startswith("sha512-")
    assert get(server, hook["id"])["resolved"] == hook["resolved"]

    report = run(server, hook["id"])
    assert report["outcome"] == "ok", report
    claims = report["result"]["claims"]
    assert claims["https://example.com/is-number"] == "7.0.0"
    assert claims["https://example.com/checks"] == [True, False, True]


def test_an_enabled_hook_serves_tokens_with_its_packages(server: Server) -> None:
    machine = create_machine(server)
    script = """
const ms = require('ms');
module.exports = function (client, scope, audience, context, cb) {
  cb(null, {'https://example.com/ttl-ms': ms('2h')});
};
"""
    hook = create(server, script, dependencies={"ms": "2.1.2"}, enabled=True)
    try:
        response = server.token(machine.client_id, machine.client_secret, audience=machine.audience)
        assert response.status_code == 200, response.text
        payload = response.json()["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["https://example.com/ttl-ms"] == 7_200_000
    finally:
        assert patch(server, hook["id"], enabled=False).status_code == 200


def test_actions_shape_and_require_of_another_version(server: Server) -> None:
    script = """
exports.onExecuteCredentialsExchange = async (event, api) => {
  const isNumber = require('is-number@7.0.0');
  const scopes = event.transaction.requested_scopes;
  api.accessToken.setCustomClaim('https://example.com/n', isNumber(scopes.length));
  if (event.secrets.OTHER === 'yes') require('is-number@6.0.0');
};
"""
    hook = create(server, script, dependencies=[{"name": "is-number", "version": "7.0.0"}])
    assert hook["dependencies"] == {"is-number": "7.0.0"}
    assert run(server, hook["id"])["result"]["claims"]["https://example.com/n"] is True

    other = run(server, hook["id"], secrets={"OTHER": "yes"})
    assert other["outcome"] == "raised"
    assert "is-number@6.0.0' is not a dependency of this hook version" in other["error"]["message"]
    assert "it declares is-number 7.0.0" in other["error"]["message"]


def test_an_undeclared_module_fails_the_call_with_a_clear_message_in_its_log(
    server: Server,
) -> None:
    script = """
module.exports = function (client, scope, audience, context, cb) {
  const _ = require('lodash');
  cb(null, {'https://example.com/x': _.identity(1)});
};
"""
    hook = create(server, script, dependencies={"is-number": "7.0.0"})
    report = run(server, hook["id"])
    assert report["outcome"] == "raised"
    with server.api() as api:
        [record] = api.get(f"/hooks/{hook['id']}/logs").json()
    assert record["id"] == report["invocation_id"]
    assert "module 'lodash' is not a dependency of this hook version" in record["error"]
    assert "declare it in the hook's dependencies" in record["error"]
    assert "/opt/" not in record["error"]

    # At the top level it is a script that does not load: refused when saved.
    refused = patch(server, hook["id"], script="require('lodash');\n" + script)
    assert_api_error(refused, 400, "module 'lodash' is not a dependency", "invalid_script")
    assert get(server, hook["id"])["version"] == 1


def test_hooks_resolving_the_same_packages_share_one_store_entry(
    server: Server, store: Path
) -> None:
    script = """
const debug = require('debug');
module.exports = function (client, scope, audience, context, cb) {
  cb(null, {'https://example.com/debug': typeof debug('x')});
};
"""
    # Declared alike in either of Auth0's shapes, and declared otherwise but
    # resolving to the same packages (debug 4.3.4 depends on ms 2.1.2).
    first = create(server, script, dependencies={"ms": "2.1.2", "debug": "4.3.4"})
    second = create(
        server,
        script,
        dependencies=[{"name": "debug", "version": "4.3.4"}, {"name": "ms", "version": "2.1.2"}],
    )
    third = create(server, script, dependencies={"debug": "4.3.4"})
    assert third["dependencies"] == {"debug": "4.3.4"}
    keys = {installed_keys(server, hook["id"])[1] for hook in (first, second, third)}
    assert len(keys) == 1
    [key] = keys
    assert key is not None
    assert [p["name"] for p in third["resolved"]] == ["debug", "ms"]
    assert first["resolved"] == second["resolved"] == third["resolved"]
    for hook in (first, third):
        report = run(server, hook["id"])
        assert report["result"]["claims"]["https://example.com/debug"] == "function", report

    # One directory, never written again, that the workers' uids can read.
    entry = store / key
    assert (entry / "node_modules" / "debug" / "package.json").is_file()
    assert [path.name for path in store.iterdir() if path.name == key] == [key]
    for path in [entry, *entry.rglob("*")]:
        found = path.lstat()
        assert stat.S_ISDIR(found.st_mode) or stat.S_ISREG(found.st_mode), path
        expected = 0o755 if stat.S_ISDIR(found.st_mode) else 0o644
        assert stat.S_IMODE(found.st_mode) == expected, path
    assert not list((store / "tmp").iterdir())  # no install left half done


def test_rollback_brings_back_the_old_set(server: Server) -> None:
    hook = create(server, VERSION_HOOK, dependencies={"is-number": "7.0.0"})

    # Only dependencies: a new version with the same script.
    changed = patch(server, hook["id"], dependencies={"is-number": "6.0.0"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["script"] == hook["script"]
    assert changed.json()["dependencies"] == {"is-number": "6.0.0"}
    claims = run(server, hook["id"])["result"]["claims"]
    assert claims["https://example.com/is-number"] == "6.0.0"

    # The same set again, as Auth0's Deploy CLI would send it: no new version.
    again = patch(server, hook["id"], dependencies={"is-number": "6.0.0"})
    assert again.json()["version"] == 2

    # A new script alone keeps the live version's dependencies.
    script = VERSION_HOOK + "// v3\n"
    third = patch(server, hook["id"], script=script)
    assert third.json()["version"] == 3
    assert third.json()["dependencies"] == {"is-number": "6.0.0"}
    assert run(server, hook["id"])["outcome"] == "ok"

    with server.api() as api:
        rolled = api.post(f"/hooks/{hook['id']}/versions/1/deploy", timeout=SLOW)
        first = api.get(f"/hooks/{hook['id']}/versions/1").json()
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1
    assert rolled.json()["dependencies"] == {"is-number": "7.0.0"}
    assert rolled.json()["resolved"] == hook["resolved"]
    assert first["dependencies"] == {"is-number": "7.0.0"}
    claims = run(server, hook["id"])["result"]["claims"]
    assert claims["https://example.com/is-number"] == "7.0.0"
    # Each version ran with its own set, from the store's entries.
    keys = installed_keys(server, hook["id"])
    assert keys[1] != keys[2] == keys[3]


def test_bad_dependencies_are_400_naming_them_and_change_nothing(server: Server) -> None:
    hook = create(server, VERSION_HOOK, dependencies={"is-number": "7.0.0"})
    missing_package = "authhooks-no-such-package-" + unique("x").split("-")[1]
    cases = [
        ({missing_package: "1.0.0"}, missing_package, "invalid_dependencies"),
        (
            {"is-number": "99.0.0"},
            "No matching version found for is-number@99.0.0",
            "invalid_dependencies",
        ),
        ({"is-number": "^7.0.0"}, "is-number: '^7.0.0' is a range", "invalid_dependencies"),
        ({"is-number": "7.x"}, "is a range; declare an exact version", "invalid_dependencies"),
        ({"is-number": "latest"}, "'latest' is not an exact version", "invalid_dependencies"),
        (
            {"Not A Name": "1.0.0"},
            "'Not A Name' is not a valid npm package name",
            "invalid_dependencies",
        ),
        ({"../etc": "1.0.0"}, "'../etc' is not a valid npm package name", "invalid_dependencies"),
        (
            {"is-number": "git+https://example.com/x.git"},
            "is not a registry version",
            "invalid_dependencies",
        ),
    ]
    for declared, mentions, code in cases:
        response = patch(server, hook["id"], dependencies=declared)
        assert_api_error(response, 400, mentions, code)
        assert "/tmp" not in response.text
        assert "/root" not in response.text
        created = post_hook(server, VERSION_HOOK, dependencies=declared)
        assert_api_error(created, 400, mentions, code)

    live = get(server, hook["id"])
    assert (live["version"], live["dependencies"]) == (1, {"is-number": "7.0.0"})
    assert live["resolved"] == hook["resolved"]
    with server.api() as api:
        assert len(api.get(f"/hooks/{hook['id']}/versions").json()) == 1
    assert run(server, hook["id"])["outcome"] == "ok"


# --- a registry of the test's own -------------------------------------------------------


def package_archive(meta: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """An npm package's archive: its package.json and files under package/."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path, content in {"package.json": json.dumps(meta).encode(), **files}.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return archive.getvalue()


class Registry:
    """An npm registry serving packages made here: a package whose install scripts
    would leave marks, one too big for the cap, one whose archive never arrives."""

    def __init__(self, marks: Path) -> None:
        self.marks = marks
        self.packages: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.stall = threading.Event()
        self.requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                name = self.path.strip("/").split("/-/")[0]
                found = registry.packages.get(name)
                if found is None:
                    self._answer(404, b'{"error": "Not found"}')
                elif "/-/" not in self.path:
                    self._answer(200, json.dumps(found[0]).encode())
                elif name == "authhooks-test-stalls":
                    registry.stall.wait(60)  # the archive never comes
                    self._answer(500, b"")
                else:
                    self._answer(200, found[1], "application/octet-stream")

            def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"

    def add(self, name: str, files: dict[str, bytes], **manifest: Any) -> None:
        version = "1.0.0"
        meta = {"name": name, "version": version, "main": "index.js", **manifest}
        data = package_archive(meta, files)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        dist = {
            "tarball": f"{self.url}{name}/-/{name}-{version}.tgz",
            "integrity": integrity,
            "shasum": hashlib.sha1(data).hexdigest(),  # noqa: S324 (npm's own field)
        }
        packument = {
            "name": name,
            "dist-tags": {"latest": version},
            "versions": {version: {**meta, "dist": dist}},
        }
        self.packages[name] = (packument, data)

    def mark_script(self, stage: str) -> str:
        return f"node -e \"require('fs').writeFileSync('{self.marks / stage}', 'ran')\""

    @contextmanager
    def serving(self) -> Iterator[Registry]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stall.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join(10)


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    marks = tmp_path_factory.mktemp("marks")
    registry = Registry(marks)
    stages = ("preinstall", "install", "postinstall", "prepare", "prepublish")
    registry.add(
        "authhooks-test-scripts",
        {"index.js": b"module.exports = () => 'installed, no script ran';\n"},
        scripts={stage: registry.mark_script(stage) for stage in stages},
        bin={"authhooks-test-scripts": "index.js"},
    )
    # 600 KB that gzip cannot shrink: over a cap of 256 KiB.
    registry.add("authhooks-test-big", {"index.js": b"", "blob.bin": os.urandom(600_000)})
    registry.add("authhooks-test-stalls", {"index.js": b""})
    # Packages whose own dependencies are no registry versions: a URL inside the
    # server's network (localhost is not the registry's host, 127.0.0.1) and a file
    # of the server's.
    inside = marks.parent / "inside"
    inside.mkdir()
    (inside / "secret.tgz").write_bytes(
        package_archive({"name": "loot", "version": "1.0.0"}, {"secret.txt": b"not for hooks"})
    )
    registry.add(
        "authhooks-test-reaches",
        {"index.js": b""},
        dependencies={"inner": f"http://localhost:{registry.port}/internal/inner.tgz"},
    )
    registry.add(
        "authhooks-test-copies",
        {"index.js": b""},
        dependencies={"loot": f"file:{inside / 'secret.tgz'}"},
    )
    with registry.serving():
        yield registry


@pytest.fixture(scope="module", params=BACKENDS)
def capped_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    own_registry: Registry,
) -> Iterator[tuple[Server, Path]]:
    """A server installing from the test's registry, under tight caps."""
    path = reachable_directory("authhooks-deps-capped-")
    try:
        with run_server(
            tmp_path_factory.mktemp(request.param),
            request.param,
            dependency_dir=path,
            npm_registry=own_registry.url,
            dependency_max_bytes=256 * 1024,
            dependency_install_timeout=10,
        ) as running:
            yield running, path
    finally:
        shutil.rmtree(path, ignore_errors=True)


USES_SCRIPTS_PACKAGE = """
const made = require('authhooks-test-scripts');
module.exports = function (client, scope, audience, context, cb) {
  cb(null, {'https://example.com/made': made()});
};
"""


def test_no_package_code_runs_on_the_server(
    capped_server: tuple[Server, Path], own_registry: Registry
) -> None:
    server, store = capped_server
    hook = create(server, USES_SCRIPTS_PACKAGE, dependencies={"authhooks-test-scripts": "1.0.0"})
    assert any(path.startswith("/authhooks-test-scripts") for path in own_registry.requests)
    report = run(server, hook["id"])
    assert report["result"]["claims"]["https://example.com/made"] == "installed, no script ran"
    assert list(own_registry.marks.iterdir()) == []  # no install script left its mark
    [key] = set(installed_keys(server, hook["id"]).values())
    assert key is not None
    assert not (store / key / "node_modules" / ".bin").exists()


def test_an_install_over_the_size_cap_is_400(capped_server: tuple[Server, Path]) -> None:
    server, store = capped_server
    hook = create(server, USES_SCRIPTS_PACKAGE, dependencies={"authhooks-test-scripts": "1.0.0"})
    response = patch(
        server,
        hook["id"],
        dependencies={"authhooks-test-scripts": "1.0.0", "authhooks-test-big": "1.0.0"},
    )
    # Stopped while it runs, or measured once done: either way, the cap is named.
    assert_api_error(response, 400, "the cap of 0.25 MiB", "invalid_dependencies")
    assert "authhooks-test-big@1.0.0" in response.json()["message"]
    live = get(server, hook["id"])
    assert (live["version"], live["dependencies"]) == (1, {"authhooks-test-scripts": "1.0.0"})
    assert not list((store / "tmp").iterdir())


def test_an_install_over_the_time_cap_is_stopped_and_400(
    capped_server: tuple[Server, Path],
) -> None:
    server, store = capped_server
    hook = create(server, USES_SCRIPTS_PACKAGE, dependencies={"authhooks-test-scripts": "1.0.0"})
    started = time.monotonic()
    response = patch(server, hook["id"], dependencies={"authhooks-test-stalls": "1.0.0"})
    assert_api_error(response, 400, "did not finish within 10 s", "invalid_dependencies")
    assert time.monotonic() - started < 60
    assert get(server, hook["id"])["version"] == 1
    # npm's whole process group is gone, and its directory with it.
    assert not list((store / "tmp").iterdir())
    for proc in Path("/proc").iterdir():
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        assert not cwd.startswith(str(store)), f"process {proc.name} still runs in {cwd}"


def test_offline_installs_only_what_the_store_has(
    server: Server, store: Path, tmp_path: Path
) -> None:
    script = VERSION_HOOK
    create(server, script, dependencies={"is-number": "7.0.0"})  # in the store now
    with run_server(
        tmp_path,
        server.backend,
        dependency_dir=store,
        dependencies_offline="true",
        npm_registry="http://127.0.0.1:9/",  # nothing listens: no network is used
    ) as offline:
        hook = create(offline, script, dependencies={"is-number": "7.0.0"})
        assert hook["resolved"][0]["version"] == "7.0.0"
        assert run(offline, hook["id"])["outcome"] == "ok"

        refused = patch(offline, hook["id"], dependencies={"is-number": "7.0.0", "ms": "2.1.3"})
        assert_api_error(refused, 400, "offline", "invalid_dependencies")
        assert "is-number@7.0.0, ms@2.1.3" in refused.json()["message"]
        assert get(offline, hook["id"])["version"] == 1


@pytest.mark.parametrize("package", ["authhooks-test-reaches", "authhooks-test-copies"])
def test_a_packages_url_and_file_dependencies_are_refused_unfetched(
    capped_server: tuple[Server, Path], own_registry: Registry, package: str
) -> None:
    """What a package's own dependencies name is fetched from the registry only:
    a URL elsewhere is never asked for, a file never reaches the store."""
    server, store = capped_server
    before = set(store.iterdir())
    response = post_hook(server, VERSION_HOOK, dependencies={package: "1.0.0"})
    refused = "git, file and URL dependencies are refused, a package's own included"
    assert_api_error(response, 400, refused, "invalid_dependencies")
    assert not any(path.startswith("/internal") for path in own_registry.requests)
    assert set(store.iterdir()) == before
    assert not list((store / "tmp").iterdir())
