"""npm, the installer of JavaScript hooks' dependencies (hooks/dependencies.py
keeps the store they go into)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authhooks.hooks.dependencies import (
    Installer,
    InstallFailed,
    InvalidDependencies,
    Package,
    Run,
    host_and_port,
)


class NpmInstaller(Installer):
    """npm packages for JavaScript hooks, from the configured registry, with
    ``--ignore-scripts``: no install script (nor any other package code) runs on
    the server, and no ``node_modules/.bin`` links are made."""

    name = "npm"
    runtime = "node"
    tool = "npm"

    def __init__(self, registry: str = "https://registry.npmjs.org/", npm: str = "npm") -> None:
        self.registry = registry
        self._npm = npm

    def declare(self, name: str, version: str) -> tuple[str, str]:
        if not _NPM_NAME.fullmatch(name) or name.lower() in _NPM_RESERVED:
            raise InvalidDependencies(
                f"{name!r} is not a valid npm package name (letters, digits, '-', '.', '_' "
                "and '~', not starting with '.' or '_', optionally '@scope/' first)"
            )
        exact = version.strip()
        if exact.startswith(("=", "v")) and _SEMVER.fullmatch(exact.lstrip("=v")):
            exact = exact.lstrip("=v")  # npm reads both as the bare version
        if _SEMVER.fullmatch(exact):
            return name, exact
        if ":" in exact or "/" in exact:
            raise InvalidDependencies(
                f"{name}: {version!r} is not a registry version: only packages of the "
                "registry, each at an exact version such as 4.17.21, can be declared"
            )
        if _NPM_RANGE.search(exact):
            raise InvalidDependencies(
                f"{name}: {version!r} is a range; declare an exact version, such as 4.17.21"
            )
        raise InvalidDependencies(f"{name}: {version!r} is not an exact version (such as 4.17.21)")

    def unavailable(self) -> str | None:
        if shutil.which(self._npm) is None:
            return "npm is not installed (apt-get install npm)"
        return None

    def secrets(self) -> Iterable[str]:
        return self.credentials(self.registry)

    def hosts(self) -> list[tuple[str, int]]:
        return [host_and_port(self.registry)]

    def install(
        self, declared: Mapping[str, str], entry: Path, scratch: Path, run: Run
    ) -> list[Package]:
        manifest = {
            "name": "authhooks-dependencies",
            "version": "1.0.0",
            "private": True,
            "dependencies": dict(declared),
        }
        (entry / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        home = scratch / "home"
        home.mkdir()
        command = [
            self._npm,
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--no-bin-links",
            "--package-lock",
            "--logs-max=0",
            "--loglevel=error",
            "--fetch-retries=1",
            # One retry, soon: npm's default waits 10 s first.
            "--fetch-retry-mintimeout=1000",
            "--fetch-retry-maxtimeout=4000",
            f"--cache={scratch / 'cache'}",
        ]
        run(command, entry, self._environment(home))
        try:
            lock = json.loads((entry / "package-lock.json").read_text())
            found = lock["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InstallFailed("it wrote no readable package-lock.json") from None
        packages = []
        for path, meta in found.items():
            if path == "":
                continue
            name = meta.get("name") or path.rpartition("node_modules/")[2]
            version, integrity = meta.get("version"), meta.get("integrity")
            if meta.get("link") or not isinstance(version, str):
                raise InstallFailed(f"{name} is not a package of the registry")
            if meta.get("inBundle"):
                packages.append(Package(name, version, integrity))
                continue  # inside its parent's archive, which came from the registry
            # A package's own dependencies may name a URL, a file or git repository
            # rather than a registry version; npm computes an integrity hash for
            # those too, so only where it came from tells.
            resolved = meta.get("resolved")
            if integrity is None or not _from_registry(resolved, self.registry):
                raise InstallFailed(
                    f"{name}@{version} does not come from the registry: git, file and URL "
                    "dependencies are refused, a package's own included"
                )
            packages.append(Package(name, version, integrity))
        for name, version in declared.items():
            installed = found.get(f"node_modules/{name}", {})
            if installed.get("version") != version:
                raise InstallFailed(f"it did not install {name}@{version}")
        return packages

    def reason(self, output: str) -> str:
        kept: list[str] = []
        for raw in output.splitlines():
            prefixed = _NPM_PREFIX.match(raw)
            if prefixed is None:
                continue
            line = raw[prefixed.end() :]
            if _NPM_NOISE.match(_NPM_TAG.sub("", line, count=1)):
                continue
            line = " ".join(_NPM_SHOWN_TAG.sub("", line, count=1).split())
            if line and line not in kept:
                kept.append(line)
        return "; ".join(kept[:6])

    def _environment(self, home: Path) -> dict[str, str]:
        # No ~/.npmrc of the server's user (HOME is the install's own); the system's
        # npmrc (npm's globalconfig) still applies, for an operator's CA or registry
        # credentials. The registry goes in the environment, not the command line,
        # which every local user can read. The network is the store's (a FetchProxy).
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "npm_config_registry": self.registry,
            # A git dependency fails at once, naming git: nothing is fetched with it.
            "npm_config_git": "authhooks-refuses-git-dependencies",
        }


def _from_registry(resolved: Any, registry: str) -> bool:
    """Whether a lock entry's ``resolved`` URL is the registry's own."""
    if not isinstance(resolved, str):
        return False
    where, home = urlsplit(resolved), urlsplit(registry)
    return (
        (where.scheme, where.hostname, where.port) == (home.scheme, home.hostname, home.port)
        and where.path.startswith(home.path)
        and ".." not in where.path.split("/")
    )


# validate-npm-package-name's rules: URL-safe, at most 214 characters, not starting
# with '.' or '_', none of ~'!()* in a new name; capitals are allowed, for the old
# packages that have them.
_NPM_NAME = re.compile(r"(?:@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*")
_NPM_RESERVED = frozenset({"node_modules", "favicon.ico"})
# semver.org's grammar; build metadata is allowed (npm ignores it).
_SEMVER = re.compile(
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_NPM_RANGE = re.compile(r"^[\^~<>=]|(?:^|\.)[xX*](?:\.|$)|\|\||\s|^\d+(?:\.\d+)?$")
_NPM_PREFIX = re.compile(r"^npm (?:error|ERR!) ?")
# What npm prints around its reason: stack frames, the error object's fields,
# where its log is, and advice that says nothing of this install.
_NPM_NOISE = re.compile(
    r"^(?:\s+at |\s*[{}]\s*$|\s+[\w-]+: |code \w+$|syscall |errno |$"
    r"|Log files were not written|A complete log of this run|Note that you can also install"
    r"|tarball, folder, http url, or git url|In most cases you|If you are behind a proxy)"
)
_NPM_TAG = re.compile(r"^(?:notarget|network|\d{3})(?:\s+|$)")  # a line's category
_NPM_SHOWN_TAG = re.compile(r"^(?:notarget|network|\d{3}(?=\s{2}))\s+")  # "404 Not Found" stays
