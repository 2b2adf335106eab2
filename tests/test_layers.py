"""No module imports a layer above its own: the map of docs/architecture.md
("Layers"), checked on every ``import`` and ``from`` of src/authhooks, those
inside functions and under TYPE_CHECKING included."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "authhooks"

# Top to bottom: a module may import its own layer and any layer below it. Each
# name is a package or module directly under src/authhooks ("" is the package's
# own __init__, which holds only its version).
LAYERS: list[frozenset[str]] = [
    # What assembles and serves the server, its HTTP surfaces and the command line.
    # sealing.py sits here, beside bootstrap.py: rotating the master key reseals
    # what every domain below keeps sealed.
    frozenset(
        {
            "app",
            "services",
            "serving",
            "bootstrap",
            "sealing",
            "__main__",
            "cli",
            "web",
            "api",
            "dashboard",
            "client",
        }
    ),
    frozenset({"identity", "users"}),  # the domain; asks flows/ to run a point
    frozenset({"flows"}),  # runs a point's enabled hooks, the runner, deliveries
    frozenset({"gitsync"}),  # git sources: webhooks checked, commits deployed
    frozenset({"hooks"}),  # hooks as stored, and their lifecycle
    frozenset({"points"}),  # one contract per point, no I/O
    frozenset({"runtime"}),  # the sandbox
    frozenset({"egress"}),  # the sandbox's one way out
    frozenset(
        {
            "logs",
            "observability",
            "storage",
            "masterkey",
            "errors",
            "config",
            "http",
            "hook",
            "private_files",
            "shutdown",
            "",
        }
    ),
]

# Within the top layer: each HTTP surface answers in its own error shape, so none
# reaches into another's, except the dashboard's session routes, which are served
# under the management API's rules (strict bodies, its error shape) and hand out
# its tokens; and the management API, which reads what hooks may know of a request
# as web/ does (web/request_info.py). Nothing but the entry point imports cli/.
SURFACES_APART: dict[str, frozenset[str]] = {
    "web": frozenset({"api", "dashboard", "cli", "app"}),
    "api": frozenset({"dashboard", "cli", "app"}),
    "dashboard": frozenset({"cli", "app"}),
    "services": frozenset({"web", "api", "dashboard", "cli", "app"}),
}
CLI_ENTRY = frozenset({"__main__", "cli"})
API_MAY_IMPORT_FROM_WEB = ("authhooks.web.request_info",)

# cli/ is a client of the management API over HTTP. Its server commands (serve,
# init, migrate, keys) run the server or act on its database and key files, so
# cli/server.py and cli/keys.py may import the server's modules; every other
# command may import only the points' contracts (to scaffold a hook), the checks
# it runs on a directory of hooks before it sends any (hooks/limits.py,
# egress/rules.py), and private_files.py, which writes its credentials file.
CLI_SERVER_COMMANDS = frozenset({"authhooks.cli.server", "authhooks.cli.keys"})
CLI_CLIENT_MAY_IMPORT = (
    "authhooks.cli",
    "authhooks.points",
    "authhooks.hooks.limits",
    "authhooks.hooks.code_format",
    "authhooks.egress.rules",
    "authhooks.private_files",
)

# client/ is what applications install to invoke their points: shipped alone, it
# imports nothing of the server, and of the rest of the world only httpx.
CLIENT_MAY_IMPORT = ("authhooks.client", "httpx")

# points/ is pure contracts: nothing of the runtime, storage, hooks, flows or HTTP.
POINTS_MAY_IMPORT = ("authhooks.points", "authhooks.errors", "authhooks.hook")

# The HTTP frameworks stay in the surfaces, and in observability/, whose /metrics
# route and request-id middleware are about running the server.
FRAMEWORKS = ("starlette", "fastapi", "uvicorn")
FRAMEWORKS_ALLOWED = frozenset(
    {"app", "serving", "cli", "web", "api", "dashboard", "observability"}
)
NOT_IN_POINTS = (*FRAMEWORKS, "sqlalchemy", "httpx", "anyio")
STANDARD_LIBRARY = frozenset({*sys.stdlib_module_names, "__future__"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    _module_name(path): path
    for path in sorted((SOURCE / PACKAGE).rglob("*.py"))
    if "frontend" not in path.parts
}


def _imports(module: str, path: Path) -> list[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                # ``from authhooks.hooks import limits`` imports the module hooks.limits.
                submodule = f"{base}.{alias.name}"
                found.append(
                    Import(module, submodule if submodule in MODULES else base, node.lineno)
                )
    return found


# Once each: ``from x import a, b`` names x twice.
IMPORTS = list(
    dict.fromkeys(found for module, path in MODULES.items() for found in _imports(module, path))
)


def _part(dotted: str) -> str | None:
    """The name directly under src/authhooks that ``dotted`` belongs to; None when
    it is not ours."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else ""


def _layer(part: str) -> int:
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise LookupError(part)


def _within(target: str, prefixes: tuple[str, ...]) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in prefixes)


def _ours() -> list[tuple[Import, str, str]]:
    ours = []
    for found in IMPORTS:
        importer, imported = _part(found.module), _part(found.target)
        if importer is not None and imported is not None:
            ours.append((found, importer, imported))
    return ours


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(
        {part for module in MODULES if (part := _part(module)) is not None} - set().union(*LAYERS)
    )
    assert not unplaced, f"place these in LAYERS (and docs/architecture.md): {unplaced}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{found} (layer {_layer(importer) + 1} imports layer {_layer(imported) + 1})"
        for found, importer, imported in _ours()
        if _layer(imported) < _layer(importer)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_surfaces_keep_apart() -> None:
    crossing = [
        str(found)
        for found, importer, imported in _ours()
        if imported in SURFACES_APART.get(importer, ())
        or (imported == "cli" and importer not in CLI_ENTRY)
        or (
            importer == "api"
            and imported == "web"
            and not _within(found.target, API_MAY_IMPORT_FROM_WEB)
        )
    ]
    assert not crossing, "\n".join(crossing)


def test_cli_client_commands_import_no_server_module() -> None:
    server_side = [
        str(found)
        for found in IMPORTS
        if _part(found.module) == "cli"
        and found.module not in CLI_SERVER_COMMANDS
        and _part(found.target) is not None
        and not _within(found.target, CLI_CLIENT_MAY_IMPORT)
    ]
    assert not server_side, "\n".join(server_side)


def test_the_client_imports_nothing_of_the_server() -> None:
    foreign = [
        str(found)
        for found in IMPORTS
        if _part(found.module) == "client"
        and not _within(found.target, CLIENT_MAY_IMPORT)
        and (_part(found.target) is not None or _top(found.target) not in STANDARD_LIBRARY)
    ]
    assert not foreign, "\n".join(foreign)
    assert any(_part(module) == "client" for module in MODULES)  # the check saw it


def _top(dotted: str) -> str:
    return dotted.partition(".")[0]


def test_points_are_pure_contracts() -> None:
    impure = [
        str(found)
        for found in IMPORTS
        if _part(found.module) == "points"
        and (
            (_part(found.target) is not None and not _within(found.target, POINTS_MAY_IMPORT))
            or _within(found.target, NOT_IN_POINTS)
        )
    ]
    assert not impure, "\n".join(impure)


def test_http_frameworks_stay_in_the_surfaces() -> None:
    misplaced = [
        str(found)
        for found in IMPORTS
        if _within(found.target, FRAMEWORKS) and _part(found.module) not in FRAMEWORKS_ALLOWED
    ]
    assert not misplaced, "\n".join(misplaced)


def test_the_check_reads_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "store.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from authhooks.flows import engine\n"
        "def later() -> None:\n"
        "    import authhooks.api.errors\n"
        "    from ..identity import clients\n"
        "    from . import limits\n"
    )
    targets = {found.target for found in _imports("authhooks.hooks.store", source)}
    assert targets >= {
        "authhooks.flows.engine",
        "authhooks.api.errors",
        "authhooks.identity.clients",
        "authhooks.hooks.limits",
    }
