"""The fenced code blocks of README.md and docs/*.md, with the markers that say how
to run them (the syntax is documented in tests/test_doc_examples.py).

Pure text handling: nothing here needs a server."""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a reader types: run against the test server.
SHELLS = {"sh", "bash", "shell", "console"}
# Hook code in JavaScript, when it assigns module.exports or exports.onExecute...
JAVASCRIPT = {"javascript", "js"}
# What a reader reads: output samples, data shapes, configuration, diagrams.
NOT_RUN = {"text", "json", "jsonc", "toml", "yaml", "ini", "http", "diff", "dotenv"}
KEYS = {"outcome", "error", "secret", "output", "file", "point"}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*example:(?P<body>.*?)-->\s*$")
_NOTE = re.compile(r"\((?P<note>[^()]*)\)\s*$")


class MarkerError(ValueError):
    pass


@dataclass(frozen=True)
class Marker:
    not_run: bool = False
    note: str = ""
    outcome: str | None = None
    error: str | None = None
    point: str | None = None
    file: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    output: tuple[str, ...] = ()


def parse_marker(body: str) -> Marker:
    """``not run (reason)``, or ``key=value`` pairs (shell quoting) and an optional
    ``(note)`` at the end."""
    note = ""
    found = _NOTE.search(body)
    if found:
        note = found["note"].strip()
        body = body[: found.start()]
    words = shlex.split(body)
    if words[:2] == ["not", "run"]:
        if len(words) > 2 or not note:
            raise MarkerError("write `not run (the reason)`, and nothing else")
        return Marker(not_run=True, note=note)
    values: dict[str, str] = {}
    secrets: dict[str, str] = {}
    output: list[str] = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or key not in KEYS:
            raise MarkerError(f"{word!r}: expected key=value with a key among {sorted(KEYS)}")
        if key == "secret":
            name, equals, secret = value.partition("=")
            if not equals:
                raise MarkerError(f"{word!r}: expected secret=NAME=value")
            secrets[name] = secret
        elif key == "output":
            output.append(value)
        elif key in values:
            raise MarkerError(f"{key} given twice")
        else:
            values[key] = value
    return Marker(
        note=note,
        outcome=values.get("outcome"),
        error=values.get("error"),
        point=values.get("point"),
        file=values.get("file"),
        secrets=secrets,
        output=tuple(output),
    )


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository, as a failure names it
    line: int  # of the opening fence
    language: str
    code: str
    marker: Marker | None
    marker_error: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def runs(self) -> bool:
        """Run by the tests unless it is a reader's text or marked not run; a block of
        an unknown language runs too, so that its test asks for a marker."""
        if self.marker_error is not None:
            return True  # so that its test reports the marker
        return self.language not in NOT_RUN and not (self.marker and self.marker.not_run)

    @property
    def file(self) -> str | None:
        """The file a reader saves this block as, for the blocks after it."""
        return self.marker.file if self.marker else None

    def commands(self) -> str:
        """The code a shell runs: a console session's ``$`` lines (and their
        continuations); the block itself otherwise."""
        if self.language != "console":
            return self.code
        lines, continued = [], False
        for line in self.code.splitlines():
            if continued or line.startswith("$ "):
                command = line if continued else line[2:]
                lines.append(command)
                continued = command.rstrip().endswith("\\")
        return "\n".join(lines) + "\n"


def blocks_of(path: Path) -> tuple[list[Block], list[str]]:
    return blocks_in(path.read_text(), path.relative_to(ROOT).as_posix())


def blocks_in(text: str, name: str) -> tuple[list[Block], list[str]]:
    """The fenced blocks of one Markdown document, and the problems of its markers
    that belong to no block (a marker must sit right before its fence)."""
    lines = text.splitlines()
    found: list[Block] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        marker_match = _MARKER.match(lines[index])
        if marker_match:
            following = index + 1
            while following < len(lines) and not lines[following].strip():
                following += 1
            if following == len(lines) or not _FENCE.match(lines[following]):
                problems.append(f"{name}:{index + 1}: a marker must come right before a fence")
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        marker, marker_error = _marker_before(lines, index)
        body: list[str] = []
        close = index + 1
        while close < len(lines):
            closing = _FENCE.match(lines[close])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[close][indent:] if lines[close][:indent].isspace() else lines[close])
            close += 1
        code = "\n".join(body) + "\n"
        found.append(Block(name, index + 1, language, code, marker, marker_error))
        index = close + 1
    return found, problems


def _marker_before(lines: list[str], fence: int) -> tuple[Marker | None, str | None]:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = _MARKER.match(lines[before]) if before >= 0 else None
    if not found:
        return None, None
    try:
        return parse_marker(found["body"]), None
    except (MarkerError, ValueError) as error:
        return None, f"marker on line {before + 1}: {error}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def all_blocks() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for path in documents():
        found, wrong = blocks_of(path)
        blocks += found
        problems += wrong
    return blocks, problems


def python_kind(code: str, functions: set[str]) -> tuple[str, str]:
    """("hook", the function it defines), ("script", ""), or ("unknown", why).

    Hook code defines a point's function at its top level; a script (a client of
    the server, or a snippet a reader runs) imports what it uses."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return "unknown", f"it does not parse: {error}"
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in functions
    ]
    if len(defined) == 1:
        return "hook", defined[0]
    if defined:
        return "unknown", f"it defines several points' functions: {defined}"
    if any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body):
        return "script", ""
    return "unknown", "it neither defines a point's function nor imports anything"


# ``exports.onExecuteX =`` (Actions) and ``module.exports = function (...)`` (Hooks),
# at the start of a line, as the server recognises JavaScript (hooks/lifecycle.py).
_JS_EXPORT = re.compile(r"^[ \t]*exports\.(\w+)[ \t]*=", re.MULTILINE)
_JS_MODULE = re.compile(
    r"^[ \t]*module\.exports[ \t]*=[ \t]*(?:async[ \t]+)?(?:function\b[^(\n]*)?\(([^)]*)\)",
    re.MULTILINE,
)


# Actions' generic name, for whichever point the hook is created on (a declared
# point's hooks may use it); it names no point, so its block must.
JS_GENERIC_ACTIONS = "onExecute"


def javascript_kind(code: str, functions: set[str]) -> tuple[str, str]:
    """("hook", the Actions function it exports), ("hooks", its Hooks function's
    parameters, as ``(user, context, cb)``), ("generic", ``onExecute``), or
    ("unknown", why).

    An Actions function names its point; a Hooks function (``module.exports =
    function (...)``) only by its parameters, which several points share; the
    generic ``exports.onExecute`` not at all."""
    names = list(dict.fromkeys(_JS_EXPORT.findall(code)))
    exported = [name for name in names if name in functions]
    if len(exported) == 1:
        return "hook", exported[0]
    if exported:
        return "unknown", f"it exports several points' functions: {exported}"
    if JS_GENERIC_ACTIONS in names:
        return "generic", JS_GENERIC_ACTIONS
    found = _JS_MODULE.search(code)
    if found:
        params = [param.strip() for param in found[1].split(",") if param.strip()]
        return "hooks", f"({', '.join(params)})"
    return "unknown", "it assigns neither module.exports nor exports.onExecute..."
