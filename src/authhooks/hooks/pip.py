"""pip, the installer of Python hooks' dependencies (hooks/dependencies.py keeps
the store they go into).

Wheels only (``--only-binary=:all:``): a wheel is unpacked, never built, so no
``setup.py`` or build backend runs on the server, and pip imports nothing of
what it installs. pip resolves for the server's own Python and platform, which
the sandbox's hook interpreter shares (runtime/sandbox.py picks the system's
Python of the same version), and reports what it installed with each file's
hash. The entry holds ``site-packages/``, which the worker puts last on
``sys.path``: after the standard library and the server's own modules, so a
package can shadow none of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from authhooks.hooks.dependencies import (
    Installer,
    InstallFailed,
    InvalidDependencies,
    Package,
    Run,
    host_and_port,
)

PYPI = "https://pypi.org/simple/"
# Where PyPI's index sends pip for the files themselves.
_PYPI_FILES = "files.pythonhosted.org"
# The directory of an entry that the worker puts on sys.path.
SITE_PACKAGES = "site-packages"
# Top-level names no package may bring: the worker's own.
_RESERVED = frozenset({"authhooks"})
# PEP 508's distribution names.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_RANGE = re.compile(r"^\s*(?:~=|!=|<=|>=|<|>|=)|[*,]")
_PIP_ERROR = re.compile(r"^(?:ERROR: (?P<line>.+)|(?P<fetch>Could not fetch URL .+))$", re.M)
# The system's CA bundle, which pip's own (certifi's) may lack: a proxy of the
# operator's that inspects TLS, say. SSL_CERT_FILE when the server has it.
_CA_BUNDLE = next(
    (
        path
        for path in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt")
        if path and os.path.isfile(path)
    ),
    None,
)
_NO_MATCH = re.compile(r"No matching distribution found for (?P<requirement>\S+)")


class PipInstaller(Installer):
    """PyPI packages (or another index's) for Python hooks, as wheels."""

    name = "pip"
    runtime = "python"
    tool = "pip"

    def __init__(self, index: str = PYPI, python: str = sys.executable) -> None:
        self.index = index if index.endswith("/") else index + "/"
        self._python = python
        self._unavailable: str | None = None  # asked once: why pip cannot run, or ""

    def declare(self, name: str, version: str) -> tuple[str, str]:
        if not _NAME.fullmatch(name):
            raise InvalidDependencies(
                f"{name!r} is not a valid distribution name (letters, digits, '-', '_' and "
                "'.', starting and ending with a letter or digit)"
            )
        exact = version.strip().removeprefix("==").strip()
        if not exact:
            raise InvalidDependencies(f"{name}: no version; declare an exact one, such as 8.0.4")
        if "@" in exact or "://" in exact or "/" in exact:
            raise InvalidDependencies(
                f"{name}: {version!r} is not an index version: only packages of the index, "
                "each at an exact version such as 8.0.4, can be declared"
            )
        if _RANGE.search(exact):
            raise InvalidDependencies(
                f"{name}: {version!r} is a range; declare an exact version, such as 8.0.4"
            )
        try:
            parsed = Version(exact)
        except InvalidVersion:
            raise InvalidDependencies(
                f"{name}: {version!r} is not an exact version (such as 8.0.4)"
            ) from None
        return canonicalize_name(name), str(parsed)

    def unavailable(self) -> str | None:
        if self._unavailable is None:
            self._unavailable = self._check_pip() or ""
        return self._unavailable or None

    def _check_pip(self) -> str | None:
        try:
            subprocess.run(
                [self._python, "-I", "-m", "pip", "--version"],
                capture_output=True,
                check=True,
                timeout=30,
                env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        except (OSError, subprocess.SubprocessError):
            return f"pip is not installed for {self._python}"
        return None

    def secrets(self) -> Iterable[str]:
        return self.credentials(self.index)

    def hosts(self) -> list[tuple[str, int]]:
        found = [host_and_port(self.index)]
        return [*found, (_PYPI_FILES, 443)] if found[0][0] == "pypi.org" else found

    def spec(self, name: str, version: str) -> str:
        return f"{name}=={version}"

    def install(
        self, declared: Mapping[str, str], entry: Path, scratch: Path, run: Run
    ) -> list[Package]:
        report = scratch / "report.json"
        site = entry / SITE_PACKAGES
        command = [
            self._python,
            "-I",  # nor the working directory nor PYTHON* variables on its path
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary=:all:",
            "--no-warn-script-location",
            "--progress-bar=off",
            "--retries=1",
            "--timeout=30",
            f"--cache-dir={scratch / 'cache'}",
            f"--target={site}",
            f"--report={report}",
            *(self.spec(name, version) for name, version in declared.items()),
        ]
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(scratch),
            "LANG": "C.UTF-8",
            # No pip.conf, the system's included (--isolated leaves that one), and the
            # index in the environment: the command line, which every local user can
            # read, holds no credentials. The network is the store's (a FetchProxy).
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": self.index,
            **({"PIP_CERT": _CA_BUNDLE} if _CA_BUNDLE else {}),
        }
        try:
            run(command, scratch, environment)
        except InstallFailed as failure:
            raise InstallFailed(self._explain(str(failure), declared)) from None
        try:
            installed = json.loads(report.read_text())["install"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InstallFailed("it wrote no readable report of what it installed") from None
        packages = [self._package(item) for item in installed]
        for top in site.iterdir() if site.is_dir() else ():
            if top.name.partition(".")[0] in _RESERVED:
                raise InstallFailed(
                    f"a package brings the module {top.name.partition('.')[0]!r}, the hooks' "
                    "own: it cannot be installed"
                )
        return packages

    def reason(self, output: str) -> str:
        lines = [(match["line"] or match["fetch"]).strip() for match in _PIP_ERROR.finditer(output)]
        kept = [line for line in dict.fromkeys(lines) if line]
        return "; ".join(kept[:4])

    def _package(self, item: dict[str, Any]) -> Package:
        """One installed distribution, from the index and a wheel, or refused."""
        metadata, info = item.get("metadata", {}), item.get("download_info", {})
        name, version = str(metadata.get("name")), str(metadata.get("version"))
        url = str(info.get("url", ""))
        hashes = info.get("archive_info", {}).get("hashes", {})
        hosts = {host for host, _ in self.hosts()}
        if item.get("is_direct") or urlsplit(url).hostname not in hosts:
            raise InstallFailed(
                f"{name}=={version} does not come from the index: URL and file "
                "dependencies are refused, a package's own included"
            )
        if "sha256" not in hashes:
            raise InstallFailed(f"{name}=={version} came with no sha256 hash")
        return Package(canonicalize_name(name), version, f"sha256:{hashes['sha256']}")

    def _explain(self, reason: str, declared: Mapping[str, str]) -> str:
        """pip's "no matching distribution", said as what it is: no such package, no
        such version, or no wheel of it for this server (sdists are not built)."""
        missing = _NO_MATCH.search(reason)
        if missing is None or "Could not fetch URL" in reason:  # the index did not answer
            return reason
        try:
            requirement = Requirement(missing["requirement"])
        except InvalidRequirement:
            return reason
        name = canonicalize_name(requirement.name)
        files = self._files(name)
        if files is None:
            return reason
        if not files:
            return f"{name} is not a package of the index"
        if name not in declared:  # one of theirs: its range is theirs to say
            return f"{requirement}, which a declared package needs: {_no_wheel()}"
        version = declared[name]
        if Version(version) not in {found for found, _ in files}:
            return f"{name} has no version {version} on the index"
        return f"{name}=={version}: {_no_wheel()} (or none for this Python version)"

    def _files(self, name: str) -> list[tuple[Version, str]] | None:
        """The index's files of a project, as (version, kind); None when it cannot say."""
        try:
            answer = httpx.get(
                f"{self.index}{name}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                timeout=10,
                follow_redirects=True,
            )
        except httpx.HTTPError:
            return None
        if answer.status_code == 404:
            return []
        try:
            listed = answer.json()["files"]
        except (ValueError, KeyError, TypeError):
            return None
        found = []
        for file in listed:
            filename = str(file.get("filename", ""))
            try:
                if filename.endswith(".whl"):
                    found.append((parse_wheel_filename(filename)[1], "wheel"))
                else:
                    found.append((parse_sdist_filename(filename)[1], "sdist"))
            except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
                continue
        return found


def _no_wheel() -> str:
    """'no wheel for cp311 manylinux x86_64; sdists are not built'."""
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
    system, _, machine = sysconfig.get_platform().partition("-")
    platform = f"manylinux {machine}" if system == "linux" else sysconfig.get_platform()
    return f"no wheel for {interpreter} {platform}; sdists are not built"
