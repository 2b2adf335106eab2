"""Python hooks' packages: installed as wheels when the hook is saved, into the
dependency store that JavaScript hooks' packages use, then imported inside the
sandbox — from PyPI itself, and from an index of the test's own for what PyPI
cannot show (a package whose import leaves a mark, one that brings the hooks'
own module, one that names a URL)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from selenium.webdriver.common.by import By

from authhooks.cli.common import parse_dependencies
from authhooks.hooks.dependencies import DependencyStore, InvalidDependencies, StoreSettings
from authhooks.hooks.pip import PipInstaller
from tests.api.helpers import assert_api_error
from tests.cli.client import logged_in
from tests.conftest import BACKENDS, Server, reachable_directory, run_server, unique
from tests.dashboard.browser import chromium, page_errors, signed_in, wait
from tests.hooks.test_dependencies import create, get, installed_keys, patch, post_hook, run


@pytest.fixture(scope="module")
def store() -> Iterator[Path]:
    path = reachable_directory("authhooks-pydeps-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, store: Path
) -> Iterator[Server]:
    """A server installing from PyPI into ``store``."""
    with run_server(
        tmp_path_factory.mktemp(request.param), request.param, dependency_dir=store
    ) as running:
        yield running


def claims(report: dict[str, Any]) -> dict[str, Any]:
    console = "\n".join(line["text"] for line in report["console"])
    assert report["outcome"] == "ok", (report.get("error"), console)
    found: dict[str, Any] = report["result"]["claims"]
    return found


SLUG_HOOK = """
from slugify import slugify

def credentials_exchange(client, scope, audience, context):
    return {"https://example.com/slug": slugify("Héllo Wörld, again")}
"""


def test_a_pure_python_package_with_a_transitive_dependency(server: Server) -> None:
    hook = create(server, SLUG_HOOK, dependencies={"python-slugify": "8.0.4"})
    assert hook["runtime"] == "python"
    assert hook["dependencies"] == {"python-slugify": "8.0.4"}
    resolved = {package["name"]: package for package in hook["resolved"]}
    assert set(resolved) == {"python-slugify", "text-unidecode"}
    assert all(package["integrity"].startswith("sha256:") for package in resolved.values())
    assert claims(run(server, hook["id"]))["https://example.com/slug"] == "hello-world-again"


def test_a_package_with_compiled_code_loads_in_the_sandbox(server: Server) -> None:
    hook = create(
        server,
        "import markupsafe\n"
        "from markupsafe import _speedups\n\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'https://example.com/escaped': str(markupsafe.escape('<b>&')),\n"
        "            'https://example.com/compiled': _speedups.__file__.endswith('.so')}\n",
        dependencies=[{"name": "MarkupSafe", "version": "==3.0.2"}],
    )
    assert hook["dependencies"] == {"markupsafe": "3.0.2"}
    found = claims(run(server, hook["id"]))
    assert found["https://example.com/escaped"] == "&lt;b&gt;&amp;"
    assert found["https://example.com/compiled"] is True


def test_hooks_resolving_alike_share_an_entry_and_rollback_restores_the_set(
    server: Server,
) -> None:
    first = create(server, SLUG_HOOK, dependencies={"python-slugify": "8.0.4"})
    second = create(server, SLUG_HOOK, dependencies={"python_slugify": "==8.0.4"})
    assert set(installed_keys(server, first["id"]).values()) == set(
        installed_keys(server, second["id"]).values()
    )
    changed = patch(server, first["id"], dependencies={"python-slugify": "8.0.3"})
    assert changed.status_code == 200, changed.text
    assert {p["name"]: p["version"] for p in changed.json()["resolved"]}["python-slugify"] == (
        "8.0.3"
    )
    with server.api() as api:
        rolled = api.post(f"/hooks/{first['id']}/versions/1/deploy", timeout=120)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["dependencies"] == {"python-slugify": "8.0.4"}
    assert claims(run(server, first["id"]))["https://example.com/slug"] == "hello-world-again"


@pytest.mark.parametrize(
    ("declared", "mentions"),
    [
        ({"authhooks-no-such-package-zq": "1.0"}, "authhooks-no-such-package-zq is not a package"),
        ({"python-slugify": "99.0.0"}, "python-slugify has no version 99.0.0"),
        ({"pycrypto": "2.6.1"}, "no wheel for cp3"),
        ({"python-slugify": ">=8"}, "is a range"),
        ({"python-slugify": "8.*"}, "is a range"),
        ({"-slugify": "8.0.4"}, "not a valid distribution name"),
        ({"python-slugify": "git+https://example.com/x"}, "not an index version"),
        ({"python-slugify": "eight"}, "not an exact version"),
    ],
)
def test_bad_dependencies_are_400_naming_them_and_change_nothing(
    server: Server, declared: dict[str, str], mentions: str
) -> None:
    hook = create(server, SLUG_HOOK, dependencies={"python-slugify": "8.0.4"})
    response = patch(server, hook["id"], dependencies=declared)
    assert_api_error(response, 400, mentions, "invalid_dependencies")
    assert "/tmp" not in response.text
    live = get(server, hook["id"])
    assert (live["version"], live["dependencies"]) == (1, {"python-slugify": "8.0.4"})
    assert post_hook(server, SLUG_HOOK, dependencies=declared).status_code == 400


def test_no_wheel_says_which_and_that_sdists_are_not_built(server: Server) -> None:
    response = post_hook(server, SLUG_HOOK, dependencies={"pycrypto": "2.6.1"})
    message = assert_api_error(response, 400)["message"]
    assert "pycrypto==2.6.1: no wheel for cp3" in message
    assert message.endswith("manylinux x86_64; sdists are not built") or "manylinux" in message


# --- an index of the test's own ------------------------------------------------------


def wheel(name: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> bytes:
    """A wheel of ``name`` 1.0.0, pure Python, holding ``files``."""
    dist = name.replace("-", "_")
    info = f"{dist}-1.0.0.dist-info"
    metadata = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0.0\n{}".format(
        name, "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    )
    contents = {
        **files,
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in contents) + f"{info}/RECORD,,\n"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path, text in {**contents, f"{info}/RECORD": record}.items():
            zipped.writestr(path, text)
    return archive.getvalue()


class Index:
    """A package index (PEP 503 and 691) serving wheels made here."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}  # project -> (filename, wheel)
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[0] == "simple" and len(parts) == 2 and parts[1] in index.files:
                    filename, data = index.files[parts[1]]
                    digest = hashlib.sha256(data).hexdigest()
                    href = f"/files/{filename}#sha256={digest}"
                    if "json" in self.headers.get("Accept", ""):
                        body = json.dumps(
                            {
                                "meta": {"api-version": "1.0"},
                                "name": parts[1],
                                "files": [{"filename": filename, "url": href, "hashes": {}}],
                            }
                        ).encode()
                        return self._answer(200, body, "application/vnd.pypi.simple.v1+json")
                    body = f'<html><body><a href="{href}">{filename}</a></body></html>'.encode()
                    return self._answer(200, body, "text/html")
                if parts[0] == "files":
                    for filename, data in index.files.values():
                        if parts[-1] == filename:
                            return self._answer(200, data, "application/octet-stream")
                return self._answer(404, b"not found", "text/plain")

            def _answer(self, status: int, body: bytes, kind: str) -> None:
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
        self.url = f"http://127.0.0.1:{self.port}/simple/"

    def add(self, name: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> None:
        self.files[name] = (
            f"{name.replace('-', '_')}-1.0.0-py3-none-any.whl",
            wheel(name, files, requires),
        )

    @contextmanager
    def serving(self) -> Iterator[Index]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(10)


@pytest.fixture(scope="module")
def marks() -> Iterator[Path]:
    path = reachable_directory("authhooks-pydeps-marks-")
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def own_index(marks: Path) -> Iterator[Index]:
    index = Index()
    mark = marks / "imported"
    index.add(
        "authhooks-test-marks",
        {
            "authhooks_test_marks/__init__.py": (
                f"open({str(mark)!r}, 'w').write('imported')\nVALUE = 'marked'\n"
            )
        },
    )
    index.add("authhooks-test-extra", {"authhooks_test_extra.py": ""})
    # A host whose name ends as the index's does: a suffix, not the index.
    index.add(
        "authhooks-test-suffix",
        {"authhooks_test_suffix.py": ""},
        requires=(
            f"inner @ http://evil127.0.0.1:{index.port}/internal/inner-1.0-py3-none-any.whl",
        ),
    )
    index.add(
        "authhooks-test-spawns",
        {"authhooks_test_spawns.py": "import subprocess\nsubprocess.run(['/bin/true'])\n"},
    )
    index.add("authhooks-test-shadow", {"authhooks/__init__.py": "HIJACKED = True\n"})
    index.add(
        "authhooks-test-stdlib",
        {"json.py": "raise SystemExit('a package shadowed json')\n", "stdlib_probe.py": ""},
    )
    index.add(
        "authhooks-test-reaches",
        {"authhooks_test_reaches.py": ""},
        requires=(f"inner @ http://localhost:{index.port}/internal/inner-1.0-py3-none-any.whl",),
    )
    with index.serving():
        yield index


@pytest.fixture(scope="module")
def local_server(
    tmp_path_factory: pytest.TempPathFactory, own_index: Index
) -> Iterator[tuple[Server, Path]]:
    path = reachable_directory("authhooks-pydeps-local-")
    try:
        with run_server(
            tmp_path_factory.mktemp("local"),
            "sqlite",
            dependency_dir=path,
            python_index=own_index.url,
        ) as running:
            yield running, path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_nothing_of_a_package_runs_on_the_server_at_install(
    local_server: tuple[Server, Path], marks: Path
) -> None:
    server, _ = local_server
    hook = create(
        server,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'https://example.com/imported': 'not yet'}\n",
        dependencies={"authhooks-test-marks": "1.0.0"},
    )
    assert hook["resolved"][0]["name"] == "authhooks-test-marks"
    # Installed, and never imported: the package's import would have left its mark.
    assert not (marks / "imported").exists()


def test_no_package_shadows_the_hooks_own_modules_or_the_standard_library(
    local_server: tuple[Server, Path],
) -> None:
    server, _ = local_server
    refused = post_hook(
        server,
        "def credentials_exchange(client, scope, audience, context):\n    return None\n",
        dependencies={"authhooks-test-shadow": "1.0.0"},
    )
    assert_api_error(refused, 400, "brings the module 'authhooks'", "invalid_dependencies")
    hook = create(
        server,
        "import json\nimport stdlib_probe\n\n"
        "def credentials_exchange(client, scope, audience, context):\n"
        "    return {'https://example.com/json': json.__file__,\n"
        "            'https://example.com/probe': stdlib_probe.__file__}\n",
        dependencies={"authhooks-test-stdlib": "1.0.0"},
    )
    found = claims(run(server, hook["id"]))
    assert not found["https://example.com/json"].startswith("/opt/authhooks-deps")
    assert found["https://example.com/probe"].startswith("/opt/authhooks-deps/site-packages/")


def test_a_package_that_starts_a_process_fails_in_the_hooks_log(
    local_server: tuple[Server, Path],
) -> None:
    server, _ = local_server
    hook = create(
        server,
        "def credentials_exchange(client, scope, audience, context):\n"
        "    import authhooks_test_spawns\n",
        dependencies={"authhooks-test-spawns": "1.0.0"},
    )
    report = run(server, hook["id"])
    assert report["outcome"] == "raised", report
    assert report["error"]["type"] == "PermissionError"
    assert report["error"]["message"] == "PermissionError: [Errno 1] Operation not permitted"
    # Shown at the hook's own line that imported it (the package's frames are not
    # the hook author's code).
    assert "import authhooks_test_spawns" in report["error"]["traceback"][-1]


@pytest.mark.parametrize(
    ("package", "host"),
    [("authhooks-test-reaches", "localhost"), ("authhooks-test-suffix", "evil127.0.0.1")],
)
def test_a_packages_url_dependency_is_refused_unfetched(
    local_server: tuple[Server, Path], own_index: Index, package: str, host: str
) -> None:
    server, store = local_server
    before = set(store.iterdir())
    response = post_hook(
        server,
        "def credentials_exchange(client, scope, audience, context):\n    return None\n",
        dependencies={package: "1.0.0"},
    )
    message = assert_api_error(response, 400, f"{package}==1.0.0", "invalid_dependencies")[
        "message"
    ]
    assert f"is fetched from {host}:{own_index.port}, which is not the index" in message
    assert not any(path.startswith("/internal") for path in own_index.requests)
    assert set(store.iterdir()) == before


def test_the_store_collects_sets_no_version_uses_and_caps_its_size(
    own_index: Index, tmp_path: Path
) -> None:
    """Garbage collection keeps what some version uses (and what is younger than the
    grace period); past the store's cap, a new set is refused once collecting
    leaves too little room."""
    referenced: set[str] = set()
    settings = StoreSettings(root=tmp_path / "store", grace_seconds=0)
    dependencies = DependencyStore(settings, [PipInstaller(own_index.url)], lambda: referenced)

    async def install(name: str) -> str:
        installed = await dependencies.install("python", {name: "1.0.0"})
        assert installed is not None
        return installed.key

    kept, dropped = (
        anyio.run(install, "authhooks-test-stdlib"),
        anyio.run(install, "authhooks-test-marks"),
    )
    referenced.add(kept)
    assert dependencies.collect() > 0
    assert dependencies.has(kept)
    assert not dependencies.has(dropped)
    assert len(list((settings.root / "sets").iterdir())) == 1  # kept's record only
    # Installed again on demand, since its record went with it.
    assert anyio.run(install, "authhooks-test-marks") == dropped

    full = DependencyStore(
        StoreSettings(root=tmp_path / "store", grace_seconds=0, max_total_bytes=1024),
        [PipInstaller(own_index.url)],
        lambda: referenced | {dropped},
    )
    with pytest.raises(InvalidDependencies, match="the dependency store is full"):
        anyio.run(full.install, "python", {"authhooks-test-extra": "1.0.0"})


def test_the_cli_declares_dependencies(server: Server, tmp_path: Path) -> None:
    cli = logged_in(server, tmp_path)
    name = unique("cli-deps")
    (cli.cwd / "slug.py").write_text(SLUG_HOOK)
    cli.ok(
        "create", "-t", "credentials-exchange", "--name", name, "slug.py",
        "--dependency", "python-slugify==8.0.4",
    )  # fmt: skip
    assert shown(cli, name)["dependencies"] == {"python-slugify": "8.0.4"}
    assert "version 2" in cli.ok("update", name, "slug.py", "-d", "python-slugify==8.0.3").stderr
    assert shown(cli, name)["dependencies"] == {"python-slugify": "8.0.3"}
    # Without --dependency, the code changes and the packages stay.
    (cli.cwd / "slug.py").write_text(SLUG_HOOK + "\n# changed\n")
    assert "version 3" in cli.ok("update", name, "slug.py").stderr
    assert shown(cli, name)["dependencies"] == {"python-slugify": "8.0.3"}
    refused = cli("create", "-t", "credentials-exchange", "--name", unique("x"), "slug.py",
                  "-d", "python-slugify")  # fmt: skip
    assert refused.returncode != 0
    assert "NAME==VERSION or NAME@VERSION" in refused.stderr


def shown(cli: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cli.ok("show", name, "--json").stdout)
    return found


def test_dependencies_on_the_command_line_parse_both_ways() -> None:
    assert parse_dependencies(["python-slugify==8.0.4", "@scope/pkg@1.2.3", "lodash@4.17.21"]) == {
        "python-slugify": "8.0.4",
        "@scope/pkg": "1.2.3",
        "lodash": "4.17.21",
    }


def test_the_dashboard_shows_and_edits_a_hooks_packages(server: Server) -> None:
    hook = create(server, SLUG_HOOK, dependencies={"python-slugify": "8.0.4"})
    with chromium() as browser:
        signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
        panel = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "aside.dependencies"))
        wait(browser, lambda b: panel.find_element(By.CSS_SELECTOR, "[data-dependency]"))
        assert panel.find_element(By.CSS_SELECTOR, "[data-dependency] code").text == (
            "python-slugify==8.0.4"
        )
        assert "text-unidecode" in panel.find_element(By.CSS_SELECTOR, ".resolved").text

        panel.find_element(By.NAME, "dependency_name").send_keys("MarkupSafe")
        panel.find_element(By.NAME, "dependency_version").send_keys("3.0.2")
        panel.find_element(By.XPATH, ".//button[text()='Add']").click()
        wait(browser, lambda b: "version 2" in b.find_element(By.CSS_SELECTOR, ".status").text)
        assert get(server, hook["id"])["dependencies"] == {
            "markupsafe": "3.0.2",
            "python-slugify": "8.0.4",
        }

        panel.find_element(By.NAME, "dependency_name").send_keys("python-slugify")
        panel.find_element(By.NAME, "dependency_version").send_keys(">=8")
        panel.find_element(By.XPATH, ".//button[text()='Add']").click()
        alert = wait(browser, lambda b: panel.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert "is a range" in alert.text
        assert get(server, hook["id"])["version"] == 2

        removed = panel.find_element(By.CSS_SELECTOR, "[data-dependency=markupsafe] button")
        removed.click()
        wait(browser, lambda b: "version 3" in b.find_element(By.CSS_SELECTOR, ".status").text)
        assert get(server, hook["id"])["dependencies"] == {"python-slugify": "8.0.4"}
        assert page_errors(browser) == []
