"""Docs that run: every fenced code block of README.md and docs/*.md is run against a
real server, as a reader would run it, so that an example cannot go stale.

How a block runs, by its info string:

- ```python that defines a point's function (``def credentials_exchange(``, or any
  function ``GET /api/v2/points`` names) is hook code: it is created as a hook of
  that point (``POST /api/v2/hooks``), which must load, then run by the runner on
  the point's sample event (``POST /api/v2/hooks/{id}/test``); its outcome must be
  ``ok`` unless a marker says otherwise.
- any other ```python that imports something is a script (a client of the server,
  or a snippet): run with this venv's Python, it must exit 0.
- ```javascript and ```js that assign ``exports.onExecute...`` (Auth0 Actions, the
  function naming its point) or ``module.exports = function (...)`` (Auth0 Hooks)
  are hook code in JavaScript, run as Python hook code is: created as a hook (the
  server infers its language from the code, as for Auth0's clients), run by the
  runner, with the same markers. A Hooks function names its point by its
  parameters only: when several points take the same ones (``(user, context,
  cb)``), the block needs ``point=``; so does the generic ``exports.onExecute``,
  which names none. Any other JavaScript needs a marker.
- Hook code runs after the blocks before it in its document, so that a point
  they declare (``POST /api/v2/points``) exists for it (``point=`` names it).
- ```sh, ```bash, ```shell and ```console (its ``$`` lines) run in bash, with
  ``set -euo pipefail`` and ``curl`` failing on HTTP errors, and must exit 0.
- ```text, ```json, ```toml, ```yaml, ```ini, ```http, ```diff and ```dotenv are
  read, not run. A block of any other info string, or of none, fails its test
  until it gets one of these or a marker: no runnable block goes untested by
  accident.

Shell blocks and scripts run with what a reader has after following the docs:
``authhooks`` on PATH (this venv's) with a CLI profile ``default`` for the server;
``$TOKEN`` (a management token), ``$CLIENT_ID`` and ``$CLIENT_SECRET`` (the
bootstrap admin) and ``$HOOK_ID`` (a hook made for the examples); a working
directory of their own per document, holding ``.venv`` and ``.authhooks`` (the
server's data dir) as the repository's root does after ``make run``; and
``http://127.0.0.1:8000`` (the docs' server) replaced by the test server's URL.
The blocks of one document run in order and build on each other, as a reader's
shell does: variables, functions and the directory a block leaves are the next
one's. Each block runs once per server; a block whose predecessor failed fails,
naming it.

A marker, an HTML comment on the line before the fence (blank lines between are
fine), says more::

    <!-- example: not run (why: starts a server that never exits) -->
    <!-- example: outcome=raised error=HTTPError secret=URL=https://h.example/x -->
    <!-- example: file=notify.py (the next block deploys it) -->

- ``not run (reason)``: the block is not run; the reason is required.
- otherwise space-separated ``key=value`` settings (shell quoting), then an
  optional ``(note)`` for whoever edits the Markdown:
  - ``outcome=KIND`` (hook code): the runner's expected outcome (``ok``,
    ``raised``, ``timeout``, ``bad_result``, ...; ``load_failed`` expects the
    hook's creation to be refused instead).
  - ``error=TEXT`` (hook code): the error's type or message contains TEXT.
  - ``secret=NAME=VALUE`` (hook code, repeatable): a secret for the run, as a
    reader would have set with the hook.
  - ``point=NAME`` (hook code): its point, when the code cannot say it.
  - ``output=TEXT`` (repeatable): the standard output (the hook's console lines)
    contains TEXT.
  - ``file=PATH``: the block, of any kind, is also saved as PATH in the
    document's working directory before the blocks after it run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.cli.client import logged_in
from tests.conftest import Server, run_server, unique
from tests.docs_examples import (
    JAVASCRIPT,
    SHELLS,
    Block,
    Marker,
    all_blocks,
    blocks_in,
    javascript_kind,
    python_kind,
)

BLOCKS, MARKER_PROBLEMS = all_blocks()
DOCS_URL = "http://127.0.0.1:8000"
HOOK_KEYS = ("outcome", "error", "point")
BASH = shutil.which("bash") or "/bin/bash"
TIMEOUT = 120  # a block may run several hooks in the sandbox on a busy machine
# `curl -s` exits 0 on an HTTP error: an example whose request fails must fail.
# The variables and functions a block leaves, and its directory, are saved for the
# next block of its document; bash's own variables are not, nor the environment
# as every block starts with it.
PRELUDE = r"""
curl() { command curl --fail-with-body --show-error "$@"; }
__doc_save() {
  local __DOC_status=$? __DOC_names
  set +euo pipefail
  if [ "$__DOC_status" -eq 0 ]; then
    __DOC_names=$(compgen -v | grep -vxF -f "$__DOC_BASH_NAMES" | grep -v '^__DOC_')
    {
      [ -n "$__DOC_names" ] && declare -p $__DOC_names 2>/dev/null | grep -vxF -f "$__DOC_BASELINE"
      declare -f
      printf 'cd -- %q\n' "$PWD"
    } > "$__DOC_STATE"
  fi
}
"""
# A hook for the examples that need one ($HOOK_ID); it stays disabled.
EXAMPLE_HOOK = """\
def credentials_exchange(client, scope, audience, context):
    return {}
"""


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: the docs enable hooks, which would change other modules'
    tokens on the session's server."""
    with run_server(tmp_path_factory.mktemp("docs-server"), "sqlite") as running:
        yield running


@dataclass
class Session:
    """One document's reader: a working directory, and the shell state so far."""

    workdir: Path
    state: Path
    failures: dict[int, str | None] = field(default_factory=dict)  # line -> why, or None


@dataclass
class Reader:
    """Runs the blocks as a reader of the docs would, against ``server``."""

    server: Server
    home: Path
    env: dict[str, str]
    functions: dict[str, str]  # a point's function -> the point
    # JavaScript: an Actions function -> the point; a Hooks function's parameters,
    # as "(user, context, cb)" -> the points that take them.
    js_functions: dict[str, str]
    js_parameters: dict[str, list[str]]
    bash_names: Path  # bash's own variables, whose values change by themselves
    baseline: Path  # `declare -p` of every variable as a block starts
    blocks: list[Block] = field(default_factory=lambda: BLOCKS)
    sessions: dict[str, Session] = field(default_factory=dict)

    def check(self, block: Block) -> str | None:
        """Why ``block`` does not do what its document says, if it does not."""
        if problem := self.problem(block):
            return problem
        if self.hook_of(block):
            # After the blocks before it, as a reader goes: they may declare its point.
            return self._through(block) or self._hook(block)
        return self._through(block)

    def problem(self, block: Block) -> str | None:
        """Why ``block`` cannot run as it is marked, if it cannot."""
        if block.marker_error:
            return block.marker_error
        marker = block.marker
        if block.language in JAVASCRIPT:
            kind, why = javascript_kind(block.code, set(self.js_functions))
            if kind == "unknown":
                return (
                    f"a ```{block.language} block runs only as hook code, and this one is not "
                    f"({why}): it is neither run nor marked; give it a marker "
                    "`<!-- example: not run (why) -->`"
                )
            if self.hook_of(block) is None:
                if kind == "generic":
                    return "exports.onExecute serves any point: mark it (point=...)"
                return (
                    f"cannot tell which point this JavaScript is for: several take {why}; "
                    "mark it (point=...)"
                )
            return None
        if block.language != "python" and block.language not in SHELLS:
            return (
                f"a ```{block.language} block is neither run nor marked: give it a runnable "
                "info string, one that is read only (text, json, ...), or a marker "
                "`<!-- example: not run (why) -->`"
            )
        if block.language == "python":
            kind, why = python_kind(block.code, set(self.functions))
            if kind == "unknown" and not (marker and marker.point):
                return f"cannot tell hook code from a script: {why}; mark it (point=...)"
            if self.hook_of(block):
                return None
        if marker and (marker.secrets or any(getattr(marker, key) for key in HOOK_KEYS)):
            return "outcome, error, secret and point apply to hook code only"
        return None

    def hook_of(self, block: Block) -> str | None:
        """The point whose hook ``block`` is, if it is hook code."""
        if block.language in JAVASCRIPT:
            kind, found = javascript_kind(block.code, set(self.js_functions))
            if kind == "unknown":
                return None
            if block.marker and block.marker.point:
                return block.marker.point
            if kind == "hook":
                return self.js_functions[found]
            if kind == "generic":
                return None
            points = self.js_parameters.get(found, [])
            return points[0] if len(points) == 1 else None
        if block.language != "python":
            return None
        if block.marker and block.marker.point:
            return block.marker.point
        kind, function = python_kind(block.code, set(self.functions))
        return self.functions[function] if kind == "hook" else None

    def _hook(self, block: Block) -> str | None:
        """Create the block as a hook of its point, run it on the point's sample
        event, delete it."""
        marker = block.marker
        outcome = marker.outcome if marker and marker.outcome else "ok"
        error = marker.error if marker else None
        point = self.hook_of(block)
        # A scheduled hook needs a schedule; created disabled, it only runs in the runner.
        schedule = {"schedule": {"cron": "0 0 1 1 *"}} if point == "schedule" else {}
        with self.server.api() as api:
            created = api.post(
                "/hooks",
                json={
                    "name": unique("docs-example"),
                    "triggerId": point,
                    "script": block.code,
                    **schedule,
                },
                timeout=60,
            )
            if outcome == "load_failed":
                if created.status_code != 400 or (error and error not in created.text):
                    return f"expected the code to be refused with {error!r}: {created.text}"
                return None
            if created.status_code != 201:
                return f"the code does not load: {created.text}"
            hook_id = created.json()["id"]
            try:
                body = {"secrets": dict(marker.secrets)} if marker and marker.secrets else {}
                answer = api.post(f"/hooks/{hook_id}/test", json=body, timeout=60)
            finally:
                api.delete(f"/hooks/{hook_id}")
        if answer.status_code != 200:
            return f"the runner answered {answer.status_code}: {answer.text}"
        report = answer.json()
        found = report["error"] or {}
        console = "".join(line["text"] for line in report["console"])
        if report["outcome"] != outcome:
            return f"outcome {report['outcome']!r}, not {outcome!r}: {report}"
        if error and error not in f"{found.get('type')}: {found.get('message')}":
            return f"the error lacks {error!r}: {report}"
        missing = [text for text in (marker.output if marker else ()) if text not in console]
        if missing:
            return f"the console lacks {missing}: {report}"
        return None

    def _session(self, path: str) -> Session:
        if path not in self.sessions:
            workdir = self.home / path.replace("/", "-")
            workdir.mkdir()
            # As at the repository's root after `make run`.
            (workdir / ".venv").symlink_to(sys.prefix)
            (workdir / ".authhooks").symlink_to(self.server.data_dir)
            self.sessions[path] = Session(workdir, self.home / f"{workdir.name}.state")
        return self.sessions[path]

    def _through(self, block: Block) -> str | None:
        """Run the blocks of ``block``'s document up to it, each once."""
        session = self._session(block.path)
        for earlier in (b for b in self.blocks if b.path == block.path and b.line <= block.line):
            if earlier.line not in session.failures:
                session.failures[earlier.line] = self._run(earlier, session)
            failure = session.failures[earlier.line]
            if failure and earlier is not block:
                return f"{earlier}, which this block follows, failed:\n{failure}"
        return session.failures[block.line]

    def _run(self, block: Block, session: Session) -> str | None:
        if block.file:
            target = session.workdir / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code)
        if not block.runs:
            return None
        if problem := self.problem(block):
            return problem
        if block.language in SHELLS:
            return self._shell(block, session)
        if self.hook_of(block):
            return None  # run by its own test, on a hook of its own
        script = session.workdir / f"example-{block.line}.py"
        script.write_text(block.code.replace(DOCS_URL, self.server.url))
        return self._process(block, [sys.executable, str(script)], session.workdir, self.env)

    def _shell(self, block: Block, session: Session) -> str | None:
        code = session.workdir / f"example-{block.line}.sh"
        code.write_text(block.commands().replace(DOCS_URL, self.server.url))
        driver = session.workdir / f"example-{block.line}.driver.sh"
        restore = f"source {session.state}\n" if session.state.exists() else ""
        driver.write_text(
            f"{PRELUDE}{restore}set -euo pipefail\ntrap __doc_save EXIT\nsource {code}\n"
        )
        env = {
            **self.env,
            "__DOC_STATE": str(session.state),
            "__DOC_BASH_NAMES": str(self.bash_names),
            "__DOC_BASELINE": str(self.baseline),
        }
        return self._process(block, [BASH, str(driver)], session.workdir, env)

    def _process(
        self, block: Block, command: list[str], cwd: Path, env: dict[str, str]
    ) -> str | None:
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"still running after {TIMEOUT} s"
        shown = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        if done.returncode != 0:
            return f"exit {done.returncode}\n{shown}"
        expected = block.marker.output if block.marker else ()
        missing = [text for text in expected if text not in done.stdout]
        if missing:
            return f"output lacks {missing}\n{shown}"
        return None


def _javascript(points: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each point's JavaScript entries, from the signatures it lists:
    ``exports.onExecuteX = async (event, api)`` and ``module.exports = function
    (user, context, cb)``."""
    functions: dict[str, str] = {}
    parameters: dict[str, list[str]] = {}
    for point in points:
        conventions = point.get("conventions", {})
        actions = conventions.get("actions", {}).get("javascript", {}).get("signature", "")
        if found := re.match(r"exports\.(\w+)", actions):
            functions[found[1]] = point["id"]
        hooks = conventions.get("hooks", {}).get("javascript", {}).get("signature", "")
        if found := re.search(r"\(([^)]*)\)", hooks):
            params = ", ".join(param.strip() for param in found[1].split(",") if param.strip())
            parameters.setdefault(f"({params})", []).append(point["id"])
    return functions, parameters


def _functions(points: list[dict[str, Any]]) -> dict[str, str]:
    """Every function a point's hooks may define (its ``function``, at any depth, so
    that a point offering several conventions names each)."""
    found: dict[str, str] = {}

    def walk(value: Any, point: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "function" and isinstance(item, str):
                    found[item] = point
                else:
                    walk(item, point)
        elif isinstance(value, list):
            for item in value:
                walk(item, point)

    for point in points:
        walk(point, point.get("id") or point["name"])
    return found


@pytest.fixture(scope="module")
def reader(docs_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Reader:
    home = tmp_path_factory.mktemp("docs-reader")
    cli = logged_in(docs_server, home)  # the profile `default`, as `make run` leaves it
    with docs_server.api() as api:
        points = api.get("/points").json()
        hook = api.post(
            "/hooks",
            json={
                "name": "docs-example-hook",
                "triggerId": "credentials-exchange",
                "script": EXAMPLE_HOOK,
            },
            timeout=60,
        )
        assert hook.status_code == 201, hook.text
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHHOOKS_")}
    env.update(
        cli.environment(),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TOKEN=docs_server.management_token(),
        CLIENT_ID=docs_server.admin_id,
        CLIENT_SECRET=docs_server.admin_secret,
        HOOK_ID=hook.json()["id"],
    )
    # Listed inside a function after a pipeline, so that FUNCNAME and PIPESTATUS are too.
    listing = "f() { true | true; compgen -v; }; f"
    bash_names, baseline = home / "bash-names", home / "bash-baseline"
    bash_names.write_text(_output([BASH, "-c", listing], {}))
    baseline.write_text(_output([BASH, "-c", "declare -p"], env))
    js_functions, js_parameters = _javascript(points)
    return Reader(
        docs_server,
        home,
        env,
        _functions(points),
        js_functions,
        js_parameters,
        bash_names,
        baseline,
    )


def _output(command: list[str], env: dict[str, str]) -> str:
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.runs], ids=str)
def test_example(block: Block, reader: Reader) -> None:
    if failure := reader.check(block):
        pytest.fail(f"{block}: {failure}", pytrace=False)


def test_markers_belong_to_blocks() -> None:
    assert not MARKER_PROBLEMS, MARKER_PROBLEMS


HARNESS_MARKERS = """\
<!-- example: not run (it never exits) -->
```sh
serve
```
<!-- example: not run -->
```sh
serve
```
<!-- example: colour=red -->
```sh
true
```
```json
{}
```
```
untagged
```
<!-- example: output=x -->
"""


def test_markers_are_read_strictly() -> None:
    blocks, problems = blocks_in(HARNESS_MARKERS, "markers.md")
    assert [block.runs for block in blocks] == [False, True, True, False, True]
    assert blocks[0].marker == Marker(not_run=True, note="it never exits")
    assert "the reason" in str(blocks[1].marker_error)
    assert "'colour=red'" in str(blocks[2].marker_error)
    assert blocks[4].language == ""  # an unmarked fence is run, to fail
    assert problems == ["markers.md:19: a marker must come right before a fence"]


# Each document below is what its last block's check should say (None: it passes).
HARNESS = [
    pytest.param(
        "```sh\nGREETING=hello\nmkdir sub && cd sub\n```\n\n"
        '<!-- example: output="hello from sub" -->\n'
        '```console\n$ echo "$GREETING from $(basename "$PWD")"\nhello from sub\n```\n',
        None,
        id="state-carries-over",
    ),
    pytest.param(
        "<!-- example: output=goodbye -->\n```sh\necho hello\n```\n",
        "output lacks ['goodbye']",
        id="output-checked",
    ),
    pytest.param(
        '```sh\ncurl -s http://127.0.0.1:8000/api/v2/nothing -H "Authorization: Bearer $TOKEN"\n'
        "```\n",
        "exit 22",
        id="http-error-fails",
    ),
    pytest.param("```sh\nfalse\necho reached\n```\n", "exit 1", id="any-failing-command-fails"),
    pytest.param('```bash\necho "$NOT_SET"\n```\n', "unbound variable", id="unset-variable-fails"),
    pytest.param(
        "```sh\nfalse\n```\n\n```sh\ntrue\n```\n",
        "which this block follows, failed",
        id="follows-a-failure",
    ),
    pytest.param("```python\nimport sys\n\nsys.exit(3)\n```\n", "exit 3", id="script-exit-code"),
    pytest.param(
        "```python\nprint('hello')\n```\n",
        "cannot tell hook code from a script",
        id="python-unclassified",
    ),
    pytest.param("```yaml2\nx: 1\n```\n", "neither run nor marked", id="unknown-language"),
    pytest.param("```js\nconsole.log(1)\n```\n", "neither run nor marked", id="js-not-hook-code"),
    pytest.param(
        "```javascript\nexports.onExecuteCredentialsExchange = async (event, api) => {\n"
        "  api.accessToken.setCustomClaim('https://example.com/tier', event.secrets.TIER);\n"
        "};\n```\n",
        None,
        id="js-actions-hook",
    ),
    pytest.param(
        "```js\nmodule.exports = function (client, scope, audience, context, cb) {\n"
        "  throw new Error('on purpose');\n};\n```\n",
        "outcome 'raised', not 'ok'",
        id="js-hook-outcome-checked",
    ),
    pytest.param(
        '<!-- example: outcome=raised error="InvalidScopeError: no" secret=KEY=v output=v-1 -->\n'
        "```js\nmodule.exports = function (client, scope, audience, context, cb) {\n"
        "  console.log(context.webtask.secrets.KEY + '-1');\n"
        "  cb(new InvalidScopeError('no'));\n};\n```\n",
        None,
        id="js-hook-marker-honoured",
    ),
    pytest.param(
        "```js\nmodule.exports = function (user, context, cb) {\n  cb();\n};\n```\n",
        "several take (user, context, cb); mark it (point=...)",
        id="js-hooks-point-ambiguous",
    ),
    pytest.param(
        "<!-- example: point=post-change-password output=changed -->\n"
        "```js\nmodule.exports = function (user, context, cb) {\n"
        "  console.log('changed', user.email);\n  cb();\n};\n```\n",
        None,
        id="js-hooks-point-marked",
    ),
    pytest.param(
        "```js\nexports.onExecute = async (event, api) => {};\n```\n",
        "exports.onExecute serves any point: mark it (point=...)",
        id="js-generic-actions-names-no-point",
    ),
    pytest.param(
        # Created on the point it names: a built-in point's hooks name it themselves.
        "<!-- example: point=post-change-password outcome=load_failed -->\n"
        "```js\nexports.onExecute = async (event, api) => {};\n```\n",
        None,
        id="js-generic-actions-marked",
    ),
    pytest.param(
        "```sh\nfalse\n```\n\n"
        "```python\ndef credentials_exchange(client, scope, audience, context):\n"
        "    return {}\n```\n",
        "which this block follows, failed",
        id="hook-follows-a-failure",
    ),
    pytest.param(
        "<!-- example: outcome=load_failed error=SyntaxError -->\n"
        "```js\nexports.onExecutePostChangePassword = async (event, api) => {\n```\n",
        None,
        id="js-load-failure-expected",
    ),
    pytest.param(
        "<!-- example: secret=A=b -->\n```sh\ntrue\n```\n",
        "apply to hook code only",
        id="hook-keys-on-shell",
    ),
    pytest.param(
        "<!-- example: file=data/hello.txt -->\n```text\nhello\n```\n\n"
        "<!-- example: output=hello -->\n```sh\ncat data/hello.txt\n```\n",
        None,
        id="file-saved",
    ),
    pytest.param(
        "```python\ndef credentials_exchange(client, scope, audience, context):\n"
        "    raise RuntimeError('on purpose')\n```\n",
        "outcome 'raised', not 'ok'",
        id="hook-outcome-checked",
    ),
    pytest.param(
        '<!-- example: outcome=raised error="on purpose" secret=KEY=v output=v-1 -->\n'
        "```python\ndef credentials_exchange(client, scope, audience, context):\n"
        "    print(context['secrets']['KEY'] + '-1')\n    raise RuntimeError('on purpose')\n```\n",
        None,
        id="hook-marker-honoured",
    ),
    pytest.param(
        "<!-- example: outcome=load_failed point=credentials-exchange -->\n"
        "```python\ndef credentials_exchange(:\n```\n",
        None,
        id="load-failure-expected",
    ),
]


@pytest.mark.parametrize(("document", "says"), HARNESS)
def test_the_checks_fail_what_a_reader_would_see_fail(
    document: str, says: str | None, reader: Reader
) -> None:
    """The checks are not vacuous: a failing command, request, output or outcome fails."""
    blocks, _ = blocks_in(document, f"harness-{unique('doc')}.md")
    own = replace(reader, blocks=blocks, sessions={})
    failure = own.check(blocks[-1])
    if says is None:
        assert failure is None, failure
    else:
        assert says in str(failure), failure
