"""A hook version's packages: checked, resolved and installed when the hook is
saved — never at call time — into a content-addressed store whose entries are
bound read-only into the version's sandbox workers.

The store (``AUTHHOOKS_DEPENDENCY_DIR``, by default ``<data_dir>/dependencies``)::

    <key>/          one installed set, never modified once there: what the sandbox
                    binds at /opt/authhooks-deps (npm: package.json,
                    package-lock.json, node_modules/); directories 0755, files 0644
    sets/<digest>   a declared set installed before: its key and resolved packages
    tmp/            installs in progress, on the store's file system so that the
                    final rename is atomic; closed to other users

A key is the SHA-256 of the installer's name and the resolved packages (name,
version, integrity), so sets that resolve alike share one entry whoever declared
them, and sets of two package managers never do. A declared set installed before
is found by its digest with no network at all, and is all an offline server
(``AUTHHOOKS_DEPENDENCIES_OFFLINE``) installs.

Each package manager is an ``Installer``: it checks names and versions, installs a
declared set into a directory without running any package's code, and says what it
resolved. The store does the rest for all of them alike: the caps on time (the
installer's whole process group is killed) and size, the message of a failure (no
server paths, no credentials), sealing the tree (plain files and directories only,
owned by the server, readable by the workers' uids), keying, sharing and the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from anyio import CapacityLimiter
from anyio.to_thread import run_sync

from authhooks.errors import DomainError
from authhooks.hooks.fetch_proxy import FetchProxy

log = logging.getLogger(__name__)

# Packages one version may declare (their own dependencies are not counted).
MAX_DECLARED = 50
MAX_NAME_CHARS = 214  # npm's limit, and more than any distribution name needs
MAX_VERSION_CHARS = 128
# Installs one server process runs at once: each is a package manager using CPU,
# memory and bandwidth beside the server's traffic.
MAX_CONCURRENT_INSTALLS = 2
# How often a running install's size and time are looked at.
_POLL_SECONDS = 0.25
# While it runs, an install may hold its download cache beside the installed tree:
# it is stopped only past this many times the cap, then the tree alone is measured.
_WORKING_ROOM = 2
_MAX_REASON_CHARS = 600
_KEY = re.compile(r"[0-9a-f]{64}")


class InvalidDependencies(DomainError):
    """A declared set that cannot be installed: a bad name or version, a package or
    version the registry does not have, an install over a cap. Names what is wrong."""

    status = 400
    code = "invalid_dependencies"


class DependenciesUnavailable(DomainError):
    """This server cannot install dependencies (no package manager, or a store the
    sandbox's workers cannot reach): not the hook's fault."""

    status = 503
    code = "unavailable"


class InstallFailed(Exception):
    """An installer's refusal, in words fit for the caller once cleaned (``reason``)."""


@dataclass(frozen=True)
class Package:
    """One resolved package. ``integrity`` is the registry's hash of what was
    installed (a Subresource Integrity string); None for a package that came inside
    another's archive (npm's bundled dependencies)."""

    name: str
    version: str
    integrity: str | None

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "integrity": self.integrity}


@dataclass(frozen=True)
class Installed:
    """A declared set's place in the store, and what it resolved to."""

    key: str
    resolved: list[dict[str, Any]]


@dataclass(frozen=True)
class StoreSettings:
    root: Path
    offline: bool = False
    max_bytes: int = 256 * 1024 * 1024  # one installed set
    install_timeout: float = 120.0
    max_total_bytes: int = 4 * 1024**3  # the whole store
    # How long an entry no version references is kept: another process may have
    # installed it and not stored its version yet.
    grace_seconds: float = 3600.0


# Runs one command of an install under the store's caps: (command, working
# directory, environment) -> its output; InstallFailed when it fails or overruns.
Run = Callable[[list[str], Path, dict[str, str]], str]


class Installer(ABC):
    """One package manager, for the hooks of one runtime."""

    name: ClassVar[str]  # hashed into every key, so two managers never share an entry
    runtime: ClassVar[str]  # the hook runtime ("node", "python") it installs for
    tool: ClassVar[str]  # what failures are attributed to ("npm could not install ...")

    @abstractmethod
    def declare(self, name: str, version: str) -> tuple[str, str]:
        """The package and exact version in canonical form; InvalidDependencies
        naming the package when either is not acceptable."""

    @abstractmethod
    def unavailable(self) -> str | None:
        """Why this server cannot install with it (its tool is missing), or None."""

    @abstractmethod
    def hosts(self) -> list[tuple[str, int]]:
        """The (host, port) pairs of its index: all an install may reach."""

    @abstractmethod
    def install(
        self, declared: Mapping[str, str], entry: Path, scratch: Path, run: Run
    ) -> list[Package]:
        """Install ``declared`` into ``entry`` (the directory workers get) without
        running any package's code, using ``scratch`` for anything else (caches, a
        home); every resolved package, the declared ones included."""

    @abstractmethod
    def reason(self, output: str) -> str:
        """The lines of the tool's output that say why it failed, joined."""

    def secrets(self) -> Iterable[str]:
        """Values of its configuration never to appear in a message (credentials)."""
        return ()

    @staticmethod
    def credentials(url: str) -> list[str]:
        """The user-info part of an index URL, when it has one."""
        found = USERINFO.search(url)
        return [found.group("userinfo")] if found else []

    def spec(self, name: str, version: str) -> str:
        """A package at a version, as its users write it."""
        return f"{name}@{version}"


class DependencyStore:
    """Installs declared sets into the store and finds those installed before."""

    def __init__(
        self,
        settings: StoreSettings,
        installers: Iterable[Installer],
        referenced: Callable[[], set[str]] = set,
    ) -> None:
        self.settings = settings
        # The keys some stored version uses: what garbage collection keeps.
        self._referenced = referenced
        self.root = settings.root
        self._installers = {installer.runtime: installer for installer in installers}
        self._sets = self.root / "sets"
        self._tmp = self.root / "tmp"
        self._slots = CapacityLimiter(MAX_CONCURRENT_INSTALLS)
        self._in_flight: dict[str, asyncio.Future[Installed]] = {}
        self._unreachable = False
        self.root.mkdir(parents=True, exist_ok=True)
        # The workers' uids reach entries through the root; nothing else is theirs.
        self.root.chmod(0o755)
        for private in (self._sets, self._tmp):
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)
        self._remove_abandoned()

    def check_reachable(self, workers_on_other_uids: bool) -> None:
        """Note whether the sandbox's workers can reach the store: when they run on
        uids of their own, bwrap binds an entry as that uid, so every directory
        above the store must let other users through."""
        if workers_on_other_uids and not reachable_by_others(self.root):
            self._unreachable = True
            log.warning(
                "the dependency store %s is closed to the sandbox's workers, which run on "
                "uids of their own: a directory above it does not let other users through. "
                "Hooks with dependencies cannot be saved until AUTHHOOKS_DEPENDENCY_DIR names "
                "a directory every user can reach (docs/operations.md, 'Settings')",
                self.root,
            )

    def declare(self, runtime: str, declared: Mapping[str, str]) -> dict[str, str]:
        """``declared`` checked and in canonical form, in name order;
        InvalidDependencies naming the first package that is not acceptable."""
        if not declared:
            return {}
        installer = self._installers.get(runtime)
        if installer is None:
            able = " or ".join(sorted(self._installers)) or "none"
            raise InvalidDependencies(
                f"hooks in {runtime} cannot declare dependencies on this server "
                f"(hooks that can: {able})"
            )
        if len(declared) > MAX_DECLARED:
            raise InvalidDependencies(f"at most {MAX_DECLARED} dependencies may be declared")
        found: dict[str, str] = {}
        for name, version in declared.items():
            if len(name) > MAX_NAME_CHARS or len(version) > MAX_VERSION_CHARS:
                raise InvalidDependencies(f"{name[:64]!r}: name or version too long")
            canonical, exact = installer.declare(name, version)
            if canonical in found:
                raise InvalidDependencies(f"{canonical}: declared twice")
            found[canonical] = exact
        return dict(sorted(found.items()))

    def has(self, key: str) -> bool:
        return bool(_KEY.fullmatch(key)) and (self.root / key).is_dir()

    def _used(self, key: str) -> bool:
        """Whether the entry is there, marked as just used: garbage collection
        spares an entry for a grace period after its last use, not its install."""
        try:
            os.utime(self.root / key)
        except OSError:
            return False
        return self.has(key)

    async def install(self, runtime: str, declared: Mapping[str, str]) -> Installed | None:
        """The store's entry for ``declared`` (None for no dependencies): one
        installed before, else a new install (InvalidDependencies when it fails)."""
        declared = self.declare(runtime, declared)
        if not declared:
            return None
        installer = self._installers[runtime]
        digest = _digest({"installer": installer.name, "declared": sorted(declared.items())})
        known = await run_sync(self._known, digest)
        if known is not None:
            return known
        if self.settings.offline:
            listed = _listed(installer, declared)
            raise InvalidDependencies(
                f"this server installs no new dependencies (offline), and its store has "
                f"no install of {listed}"
            )
        self._available(installer)
        pending = self._in_flight.get(digest)
        if pending is None:
            # One install per declared set at a time: whoever else asks waits for it.
            pending = asyncio.ensure_future(self._install_new(installer, declared, digest))
            self._in_flight[digest] = pending
            pending.add_done_callback(lambda done: self._settled(digest, done))
        # A caller that goes away leaves the install to finish, for the next one.
        return await asyncio.shield(pending)

    async def ensure(self, runtime: str, declared: Mapping[str, str], key: str | None) -> None:
        """A stored version's installed set is in the store: installed again from its
        declared set when it is not (the store was emptied, or another host's wrote it)."""
        if not declared or key is None or await run_sync(self._used, key):
            return
        installed = await self.install(runtime, declared)
        if installed is None or installed.key != key:
            raise InvalidDependencies(
                "this version's dependencies are no longer in the dependency store, and "
                "installing them again resolves other packages: save its code again"
            )

    def _available(self, installer: Installer) -> None:
        if self._unreachable:
            raise DependenciesUnavailable(
                "dependencies cannot be installed on this server: the sandbox's workers "
                "cannot reach its dependency store (the server's log says why)"
            )
        why = installer.unavailable()
        if why is not None:
            raise DependenciesUnavailable(f"dependencies cannot be installed on this server: {why}")

    def _settled(self, digest: str, done: asyncio.Future[Installed]) -> None:
        self._in_flight.pop(digest, None)
        if not done.cancelled():
            done.exception()  # seen here too, should every caller have gone away

    async def _install_new(
        self, installer: Installer, declared: dict[str, str], digest: str
    ) -> Installed:
        async with self._slots:
            # Not abandoned when its caller goes: the process it runs is capped anyway.
            return await run_sync(self._install_blocking, installer, declared, digest)

    def _install_blocking(
        self, installer: Installer, declared: dict[str, str], digest: str
    ) -> Installed:
        listed = _listed(installer, declared)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="install-", dir=self._tmp))
        try:
            entry, scratch = work / "entry", work / "scratch"
            entry.mkdir()
            scratch.mkdir()
            try:
                fetch = FetchProxy(installer.hosts())
                with fetch as proxy:
                    runner = _CappedRun(self.settings, work, installer, _through(proxy, scratch))
                    try:
                        packages = installer.install(declared, entry, scratch, runner)
                    except InstallFailed:
                        if fetch.refused:  # what it said of it is the proxy's 403, in its words
                            raise InstallFailed(
                                f"a dependency is fetched from {fetch.refused[0]}, which is not "
                                "the index: git, file and URL dependencies are refused, a "
                                "package's own included"
                            ) from None
                        raise
                size = seal(entry)
            except InstallFailed as error:
                reason = clean(str(error), [str(work), str(self.root)], installer.secrets())
                log.warning("installing %s failed: %s", listed, reason)
                raise InvalidDependencies(
                    f"{installer.tool} could not install {listed}: {reason}"
                ) from None
            if size > self.settings.max_bytes:
                raise InvalidDependencies(
                    f"{listed}: the installed packages take {_mib(size)}, over the cap of "
                    f"{_mib(self.settings.max_bytes)} (AUTHHOOKS_DEPENDENCY_MAX_BYTES)"
                )
            unique = sorted(set(packages), key=lambda p: (p.name, p.version, p.integrity or ""))
            key = store_key(installer.name, unique)
            if not self.has(key):  # a set resolving to an entry there already takes no room
                self._make_room(listed, size)
            resolved = [package.view() for package in unique]
            try:
                os.rename(entry, self.root / key)
            except OSError as error:
                # Another install of the same packages got there first: it is the same.
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not self._used(key):
                    raise
            self._remember(digest, Installed(key, resolved))
            log.info(
                "installed %s as dependency set %s: %d packages, %s, in %.1f s",
                listed,
                key,
                len(resolved),
                _mib(size),
                time.monotonic() - started,
            )
            return Installed(key, resolved)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def collect(self) -> int:
        """Remove the entries no stored version references (older than the grace
        period), and the records of declared sets that led to them; bytes freed."""
        keep = self._referenced()
        oldest = time.time() - self.settings.grace_seconds
        freed = 0
        for path in self.root.iterdir():
            if not _KEY.fullmatch(path.name) or path.name in keep:
                continue
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime >= oldest:
                    continue
                size = disk_usage(path)
                # Renamed away first, so no worker starting now binds half of it.
                doomed = Path(tempfile.mkdtemp(prefix="collected-", dir=self._tmp))
                os.rename(path, doomed / path.name)
                if (doomed / path.name).lstat().st_mtime >= oldest:
                    os.rename(doomed / path.name, path)  # used again just now: it stays
                    continue
                shutil.rmtree(doomed, ignore_errors=True)
                freed += size
                log.info("dependency set %s removed: no version uses it", path.name)
        for record in self._sets.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if not self.has(json.loads(record.read_text())["key"]):
                    record.unlink()
        return freed

    def _make_room(self, listed: str, size: int) -> None:
        """Room in the store for a new entry of ``size`` bytes, collecting what no
        version uses when it is short; InvalidDependencies when that is not enough."""
        cap = self.settings.max_total_bytes
        if self._entries_size() + size <= cap:
            return
        self.collect()
        if self._entries_size() + size > cap:
            raise InvalidDependencies(
                f"{listed}: the dependency store is full ({_mib(cap)}, "
                "AUTHHOOKS_DEPENDENCY_STORE_MAX_BYTES), even without the sets no version uses"
            )

    def _entries_size(self) -> int:
        return sum(disk_usage(path) for path in self.root.iterdir() if _KEY.fullmatch(path.name))

    def _known(self, digest: str) -> Installed | None:
        try:
            found = json.loads((self._sets / f"{digest}.json").read_text())
            key, resolved = found["key"], found["resolved"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning(
                "dependency set %s: its record is unreadable (%s): installing anew", digest, error
            )
            return None
        if not isinstance(key, str) or not isinstance(resolved, list):
            return None
        if not _KEY.fullmatch(key) or not self._used(key):
            return None
        return Installed(key, resolved)

    def _remember(self, digest: str, installed: Installed) -> None:
        fd, temporary = tempfile.mkstemp(dir=self._sets, prefix=f".{digest}.")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump({"key": installed.key, "resolved": installed.resolved}, file)
            os.replace(temporary, self._sets / f"{digest}.json")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def _remove_abandoned(self) -> None:
        """Installs a process left behind when it died: none can still be running
        once older than the longest an install may take."""
        oldest = time.time() - 2 * self.settings.install_timeout - 60
        for path in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < oldest:
                    shutil.rmtree(path, ignore_errors=True)


class _CappedRun:
    """Runs an installer's commands in a process group of their own, killed whole
    when they outlast the install's time or its directory outgrows the size cap."""

    def __init__(
        self, settings: StoreSettings, work: Path, installer: Installer, network: dict[str, str]
    ) -> None:
        self._deadline = time.monotonic() + settings.install_timeout
        self._settings = settings
        self._work = work
        self._installer = installer
        self._network = network  # the proxy and temporary directory settings of every command

    def __call__(self, command: list[str], cwd: Path, env: dict[str, str]) -> str:
        tool = self._installer.tool
        with subprocess.Popen(
            command,
            cwd=cwd,
            env={**env, **self._network},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as process:
            try:
                output = self._wait(process)
            except BaseException:
                # Still its group's leader, not reaped: the group id is its own.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise
        text = output.decode("utf-8", "replace")
        if process.returncode != 0:
            reason = (
                self._installer.reason(text) or f"{tool} exited with status {process.returncode}"
            )
            raise InstallFailed(reason)
        return text

    def _wait(self, process: subprocess.Popen[bytes]) -> bytes:
        settings = self._settings
        while True:
            try:
                output, _ = process.communicate(timeout=_POLL_SECONDS)
                return output
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > self._deadline:
                raise InstallFailed(
                    f"it did not finish within {settings.install_timeout:g} s "
                    "(AUTHHOOKS_DEPENDENCY_INSTALL_TIMEOUT)"
                )
            if disk_usage(self._work) > _WORKING_ROOM * settings.max_bytes:
                raise InstallFailed(
                    f"the packages take more than the cap of {_mib(settings.max_bytes)} "
                    "(AUTHHOOKS_DEPENDENCY_MAX_BYTES)"
                )


# What an installer's process may learn of the server's CA bundle.
_PASSED_THROUGH = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR")


def host_and_port(url: str) -> tuple[str, int]:
    """An index URL's host and port, as an install connects to them."""
    where = urlsplit(url)
    return (where.hostname or "", where.port or (443 if where.scheme == "https" else 80))


def _through(proxy: str, scratch: Path) -> dict[str, str]:
    """Every command of an install: the network only through ``proxy`` (a
    FetchProxy: the index's hosts and nothing else), under the names each package
    manager reads, with no exceptions; temporary files in the install's own
    directory, where its caps measure them."""
    passed = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    temporary = scratch / "tmp"
    temporary.mkdir(exist_ok=True)
    return {
        **passed,
        **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), proxy),
        **dict.fromkeys(("npm_config_proxy", "npm_config_https_proxy"), proxy),
        "NO_PROXY": "",
        "no_proxy": "",
        "npm_config_noproxy": "",
        "TMPDIR": str(temporary),
    }


def _listed(installer: Installer, declared: Mapping[str, str]) -> str:
    return ", ".join(installer.spec(name, version) for name, version in declared.items())


def store_key(installer: str, packages: Iterable[Package]) -> str:
    """The store's key of a resolved set: what was installed, whoever declared it."""
    unique = sorted({(p.name, p.version, p.integrity or "") for p in packages})
    return _digest({"installer": installer, "packages": unique})


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()


def seal(top: Path) -> int:
    """Make an installed tree fit to bind into the sandbox, and measure it (as du
    does): plain files and directories only — a link could lead the chmod below
    to a file of the server's — owned by the server, directories 0755 and files
    0644, so that workers on other uids read it all and write none of it."""
    uid, gid = os.geteuid(), os.getegid()
    total = _seal_one(str(top), ".", uid, gid)
    for directory, subdirectories, files in os.walk(top):  # follows no links
        for name in [*subdirectories, *files]:
            path = os.path.join(directory, name)
            total += _seal_one(path, os.path.relpath(path, top), uid, gid)
    return total


def _seal_one(path: str, shown: str, uid: int, gid: int) -> int:
    found = os.lstat(path)
    if stat.S_ISDIR(found.st_mode):
        mode = 0o755
    elif stat.S_ISREG(found.st_mode):
        if found.st_nlink > 1:
            raise InstallFailed(f"{shown} is a hard link: packages must be plain files")
        mode = 0o644
    else:
        raise InstallFailed(f"{shown} is not a plain file: packages must be plain files")
    if (found.st_uid, found.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(found.st_mode) != mode:
        os.chmod(path, mode)
    return int(found.st_blocks) * 512


def disk_usage(top: Path) -> int:
    """Bytes the tree under ``top`` takes on disk; what vanishes meanwhile is skipped."""
    total = 0
    stack = [str(top)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        found = entry.stat(follow_symlinks=False)
                        total += found.st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
        except OSError:
            continue
    return total


def reachable_by_others(path: Path) -> bool:
    """Whether a user with no relation to the owner can reach and read ``path``:
    every directory above it searchable by others, itself readable and searchable."""
    try:
        target = path.resolve()
        for parent in reversed(target.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(target).st_mode
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@", re.IGNORECASE)
_CREDENTIAL = re.compile(
    r"(?P<name>_authToken|_auth|_password|authorization|token|password)(?P<sep>\s*[=:]\s*)\S+",
    re.IGNORECASE,
)
# An absolute path not inside a URL (not after ':', '/' or a word character).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)*[\w.@+~-]+")


def clean(text: str, paths: Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """A tool's message fit for the caller: no credentials, no server paths, one
    line, trimmed."""
    for value in sorted((value for value in secrets if value), key=len, reverse=True):
        text = text.replace(value, "***")
    for value in sorted((value for value in paths if value), key=len, reverse=True):
        text = text.replace(value, "…")
    text = USERINFO.sub(r"\g<scheme>***@", text)
    text = _CREDENTIAL.sub(r"\g<name>\g<sep>***", text)
    text = _ABSOLUTE_PATH.sub("…", text)
    text = " ".join(text.split())
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 1] + "…"
    return text


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MiB"
