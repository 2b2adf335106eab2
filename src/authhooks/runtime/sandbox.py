"""Starting one worker inside bubblewrap: namespaces; read-only binds of the
Python runtime, authhooks' package, the HTTP clients hooks may import and a CA
bundle; a small /tmp; no environment but where the CA bundle is; an
unprivileged uid.

What every sandbox is made of is discovered once, at start (``Sandbox``: the
interpreter, the libraries it loads, whether workers get host uids of their
own). Lock files in a private directory (``claim_lock``) give each server
process a range of uids of its own, and a CPU of its own when pinned; a
worker's CPU priority is lowered from outside too (``lower_autogroup``). The seccomp filter and
resource limits are applied by the worker itself (worker.py) before it loads
hook code; see docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import authhooks
from authhooks.private_files import why_not_private
from authhooks.runtime import seccomp

log = logging.getLogger(__name__)

PACKAGE_MOUNT = "/opt/authhooks"
LIBRARY_MOUNT = "/opt/authhooks-lib"
# Where the CA bundle appears in every sandbox; SSL_CERT_FILE (which OpenSSL, and
# so ssl, urllib.request, http.client and httpx, reads) and REQUESTS_CA_BUNDLE
# point at it, so that every client verifies servers against it as it comes.
CA_MOUNT = "/opt/authhooks-ca/ca-certificates.crt"
# The Node.js worker's own files (worker.js, its proxy agents, confine.so), the
# seccomp filter it loads, and a version's dependencies, when it has any.
NODE_MOUNT = "/opt/authhooks-node"
FILTER_MOUNT = "/opt/authhooks-filter.bpf"
DEPENDENCIES_MOUNT = "/opt/authhooks-deps"
# The manylinux policy's system libraries (PEP 600), which wheels link to as they are.
MANYLINUX_LIBRARIES = (
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
)
NODE_DIR = Path(__file__).resolve().parent / "node"
MIN_NODE = (20, 0)
LANGUAGES = ("python", "node")
# Pure-Python HTTP clients hooks may import besides the standard library, bound
# read-only from the server's own environment when it has them (httpx and what
# it needs; requests and its needs if installed). They reach the network only
# through the egress broker, like everything else in the sandbox.
HOOK_LIBRARIES = (
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "requests",
    "urllib3",
    "charset_normalizer",
)
# Workers one server process may have alive at once, and so the size of its uid range.
SLOTS = 4096
_RANGES = 400_000  # 2,000,000,000 + 400,000 x 4,096 stays below 2**32 - 1
SANDBOX_UID = 65534  # "nobody", inside the sandbox's own user namespace
_DISCOVER = (
    "import json, sys, sysconfig; p = sysconfig.get_paths(); "
    "print(json.dumps({'stdlib': p['stdlib'], 'platstdlib': p['platstdlib'], "
    "'version': list(sys.version_info[:2])}))"
)


class SandboxUnavailable(Exception):
    """bubblewrap, a usable interpreter or libseccomp is missing: hooks cannot run here."""


@dataclass(frozen=True)
class Limits:
    """Per-worker limits; the worker applies them as hard rlimits before loading hook code."""

    memory_bytes: int = 128 * 1024 * 1024
    cpu_seconds: int = 600  # over the worker's whole life; calls are bounded by their timeout
    file_bytes: int = 8 * 1024 * 1024
    open_files: int = 64
    processes: int = 16  # threads count here; new processes are refused by seccomp
    tmp_bytes: int = 16 * 1024 * 1024
    lines: int = 200  # console lines kept per call
    line_chars: int = 2000
    result_bytes: int = 1024 * 1024
    # CPU priority below the server's (nice 0): a hook that burns CPU — a loop
    # until its timeout, say — slows the server's own work, the token path among
    # it, far less (bench/README.md, "Hostile hooks beside the token flow").
    nice: int = 10

    def for_worker(self) -> dict[str, int]:
        return {
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": self.cpu_seconds,
            "file_bytes": self.file_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
            "lines": self.lines,
            "line_chars": self.line_chars,
            "result_bytes": self.result_bytes,
            "nice": self.nice,
        }


@dataclass(frozen=True)
class SandboxSettings:
    # "auto": the server's own interpreter when an unprivileged uid can read it,
    # else the system's python3 of the same version, else the server's own.
    python: str = "auto"
    # Workers run as uid_base + slot on the host when the server runs as root;
    # 0 keeps them on the server's own uid.
    uid_base: int = 2_000_000_000
    bwrap: str = "bwrap"
    # The CA certificates hooks' TLS clients trust; empty: the system's bundle, or
    # certifi's where the system has none.
    ca_bundle: str = ""
    # The Node.js binary for JavaScript hooks: "auto" finds `node` on PATH.
    node: str = "auto"


@dataclass(frozen=True)
class Spawned:
    process: subprocess.Popen[bytes]
    to_worker: int
    from_worker: int
    console: int


@dataclass
class Sandbox:
    """What every worker's sandbox is made of, discovered once at start."""

    settings: SandboxSettings
    limits: Limits
    python: Path = field(init=False)
    binds: list[Path] = field(init=False)
    package: Path = field(init=False)
    hidden: list[Path] = field(init=False)
    seccomp_library: Path = field(init=False)
    # The packages of HOOK_LIBRARIES this server has and other uids can read,
    # each bound under LIBRARY_MOUNT.
    hook_libraries: list[Path] = field(init=False)
    separate_uids: bool = field(init=False)
    bwrap: str = field(init=False)
    # util-linux's setpriv, which drops to a worker's uid before running bwrap.
    setpriv: str | None = field(init=False)
    ca_bundle: Path | None = field(init=False)
    # What JavaScript hooks run on, or None, and then ``node_unavailable`` says why.
    node: NodeRuntime | None = field(init=False, default=None)
    node_unavailable: str = field(init=False, default="")
    _claimed: tuple[int, int] | None = field(init=False, default=None)  # (range, lock fd)

    def __post_init__(self) -> None:
        found = shutil.which(self.settings.bwrap)
        if found is None:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
            )
        self.bwrap = found
        self.setpriv = shutil.which("setpriv")
        root = os.geteuid() == 0
        self.python = _choose_python(self.settings.python, root and self.settings.uid_base > 0)
        stdlib, platstdlib = _interpreter_paths(self.python)
        self.seccomp_library = _find_library("libseccomp.so.2")
        # What compiled wheels a hook declares may load beyond the interpreter's own
        # libraries: the system libraries the manylinux policy lets wheels take
        # from the system (they bring the rest themselves).
        wheel_runtimes = [
            found for found in map(_optional_library, MANYLINUX_LIBRARIES) if found is not None
        ]
        shared = _shared_libraries(
            [self.python, *Path(platstdlib, "lib-dynload").glob("*.so"), *wheel_runtimes]
        )
        self.package = Path(authhooks.__file__).resolve().parent
        # A library other uids cannot read is left out rather than let it decide
        # whether workers get uids of their own.
        self.hook_libraries = [path for path in _hook_libraries() if _others_can_read(path)]
        self.binds = sorted(
            {
                self.python,
                Path(stdlib),
                Path(platstdlib),
                self.seccomp_library,
                *wheel_runtimes,
                *shared,
            }
        )
        self.hidden = [path for path in (Path(stdlib) / "site-packages",) if path.is_dir()]
        self.separate_uids = (
            root
            and self.settings.uid_base > 0
            and all(_others_can_read(p) for p in [*self.binds, self.package, Path(self.bwrap)])
        )
        if root and self.settings.uid_base > 0 and not self.separate_uids:
            log.warning(
                "sandboxed workers run on the server's uid: an unprivileged uid cannot "
                "read the interpreter %s or authhooks' package (see docs/sandbox.md)",
                self.python,
            )
        self.ca_bundle = _ca_bundle(self.settings.ca_bundle)
        if self.ca_bundle is None:
            log.warning("no CA bundle found: HTTPS from hooks cannot verify any server")
        elif not self.ca_bundle.is_file():
            raise SandboxUnavailable(f"the CA bundle {self.ca_bundle} is not a file")
        elif self.separate_uids and not _others_can_read(self.ca_bundle):
            raise SandboxUnavailable(
                f"workers, on uids of their own, cannot read the CA bundle {self.ca_bundle}: "
                "make it readable by all (it holds public certificates only)"
            )
        if self.separate_uids:
            self._uid_range()  # now: a lock directory that is refused stops the start
        try:
            self.node = NodeRuntime.discover(self.settings.node, self.seccomp_library)
        except SandboxUnavailable as error:
            self.node_unavailable = str(error)
            log.info("JavaScript hooks cannot run here: %s", error)
        if self.node is not None and self.separate_uids:
            unreadable = [p for p in self.node.binds if not _others_can_read(p)]
            if unreadable:
                self.node_unavailable = (
                    f"workers, on uids of their own, cannot read {unreadable[0]}"
                )
                self.node.close()
                self.node = None

    def command(
        self,
        out_fd: int,
        language: str = "python",
        egress: int | None = None,
        dependencies: Path | None = None,
    ) -> list[str]:
        """The bwrap command of one worker of ``language``, whose frames go out on
        ``out_fd``; ``dependencies``, a version's installed packages, are bound
        read-only where its worker looks for them."""
        if language == "node":
            return self._node_command(out_fd, egress, dependencies)
        args = self._bwrap(self._ca_environment())
        for path in self.binds:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind", str(self.package), f"{PACKAGE_MOUNT}/authhooks"]
        for library in self.hook_libraries:
            args += ["--ro-bind", str(library), f"{LIBRARY_MOUNT}/{library.name}"]
        if dependencies is not None:
            args += ["--ro-bind", str(dependencies), DEPENDENCIES_MOUNT]
        args += self._common_binds()
        for path in self.hidden:
            args += ["--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
        args += self._read_only()
        # The version's packages come last: after the standard library and the
        # server's own modules, which none of them can shadow.
        last = (
            f"; sys.path.append({DEPENDENCIES_MOUNT + '/site-packages'!r})" if dependencies else ""
        )
        bootstrap = (
            f"import sys; sys.path[:0] = [{PACKAGE_MOUNT!r}, {LIBRARY_MOUNT!r}]{last}; "
            f"from authhooks.runtime.worker import main; main({out_fd})"
        )
        return [*args, str(self.python), "-I", "-S", "-B", "-X", "utf8", "-c", bootstrap]

    def _node_command(
        self, out_fd: int, egress: int | None, dependencies: Path | None
    ) -> list[str]:
        node = self.node
        if node is None:
            raise SandboxUnavailable(f"JavaScript hooks cannot run here: {self.node_unavailable}")
        limits = self.limits
        # confine.c reads these before Node starts, and clears them (docs/sandbox.md).
        confinement = {
            "LD_PRELOAD": f"{NODE_MOUNT}/confine.so",
            "AUTHHOOKS_FILTER": FILTER_MOUNT,
            "AUTHHOOKS_LIMITS": " ".join(
                str(value)
                for value in (
                    limits.memory_bytes,
                    limits.cpu_seconds,
                    limits.file_bytes,
                    limits.open_files,
                    limits.processes,
                    limits.nice,
                )
            ),
            "AUTHHOOKS_FRAMES": str(out_fd),
            # Fewer threads than Node's defaults: each counts against the process cap.
            "UV_THREADPOOL_SIZE": "2",
        }
        if egress is not None:
            confinement["AUTHHOOKS_DOOR"] = str(egress)
        environment = [
            arg for name, value in confinement.items() for arg in ("--setenv", name, value)
        ]
        args = self._bwrap([*environment, *self._ca_environment()])
        for path in node.binds:
            args += ["--ro-bind", str(path), str(path)]
        args += [
            "--ro-bind",
            str(NODE_DIR),
            NODE_MOUNT,
            "--ro-bind",
            str(node.filter),
            FILTER_MOUNT,
        ]
        if dependencies is not None:
            args += ["--ro-bind", str(dependencies), DEPENDENCIES_MOUNT]
        args += self._common_binds()
        args += self._read_only()
        # The V8 heap's cap: a hook that allocates past it ends as out_of_memory, as
        # one that passes RLIMIT_DATA (the whole process's writable memory) does.
        heap_mib = limits.memory_bytes * 5 // 8 >> 20
        return [
            *args,
            str(node.binary),
            "--no-addons",
            "--use-openssl-ca",
            f"--max-old-space-size={heap_mib}",
            "--v8-pool-size=2",
            f"{NODE_MOUNT}/worker.js",
            str(out_fd),
        ]

    def _bwrap(self, environment: list[str]) -> list[str]:
        return [
            self.bwrap,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "hook",
            # No bwrap init inside: the worker is pid 1 and the only process there,
            # so nothing unfiltered shares its namespace (or its /proc).
            "--as-pid-1",
            "--die-with-parent",
            # No "--new-session": Popen's setsid already leaves the sandbox without a
            # controlling terminal, and a second session would be a scheduler
            # autogroup of its own, out of reach of ``lower_autogroup``.
            "--clearenv",
            *environment,
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(self.limits.tmp_bytes),
            "--tmpfs",
            "/tmp",
        ]

    def _common_binds(self) -> list[str]:
        if self.ca_bundle is None:
            return []
        return ["--ro-bind", str(self.ca_bundle), CA_MOUNT]

    @staticmethod
    def _read_only() -> list[str]:
        # Everything but /tmp read-only: no writable tmpfs at /, /opt or /dev(/shm).
        # /proc too: its files take writes (/proc/self/autogroup would let hook
        # code undo the priority the server set, see lower_autogroup).
        return [
            "--remount-ro", "/dev", "--remount-ro", "/proc", "--remount-ro", "/",
            "--chdir", "/tmp", "--",
        ]  # fmt: skip

    def _ca_environment(self) -> list[str]:
        if self.ca_bundle is None:
            return []
        variables = {
            "SSL_CERT_FILE": CA_MOUNT,
            "SSL_CERT_DIR": str(Path(CA_MOUNT).parent),
            "REQUESTS_CA_BUNDLE": CA_MOUNT,
        }
        return [arg for name, value in variables.items() for arg in ("--setenv", name, value)]

    def host_uid(self, slot: int) -> int:
        """The host uid the worker in ``slot`` runs as."""
        if self.separate_uids:
            return self.settings.uid_base + self._uid_range() * SLOTS + slot
        return os.getuid()

    def spawn(
        self,
        slot: int,
        egress: int | None = None,
        language: str = "python",
        dependencies: Path | None = None,
    ) -> Spawned:
        """Start one sandboxed worker of ``language``; it waits for its ``load`` frame.

        ``slot`` (0 to SLOTS - 1) must be unique among this process's live workers;
        with separate uids it picks the worker's host uid within this process's range.
        ``egress`` is a descriptor the worker inherits, under the same number: its
        door to the egress broker. ``dependencies`` is the version's installed
        packages, if it has any.
        """
        to_worker_r, to_worker = os.pipe()
        from_worker, from_worker_w = os.pipe()
        console, console_w = os.pipe()
        uid = self.host_uid(slot) if self.separate_uids else None
        command = self.command(from_worker_w, language, egress, dependencies)
        popen_uid = None  # without setpriv, Popen changes the uid itself (and forks)
        if uid is not None and self.setpriv is not None:
            # setpriv changes the uid after exec, so Popen can vfork: forking the
            # server's whole address space to change it first took ~20 ms, during
            # which the event loop stood still (bench/README.md, "Hostile hooks").
            command = [
                self.setpriv,
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--",
                *command,
            ]
        else:
            popen_uid = uid
        try:
            process = subprocess.Popen(
                command,
                stdin=to_worker_r,
                stdout=console_w,
                stderr=console_w,
                pass_fds=(from_worker_w,) if egress is None else (from_worker_w, egress),
                env={},  # bwrap's own environment is readable from inside: keep it empty
                start_new_session=True,
                user=popen_uid,
                group=popen_uid,
                extra_groups=[] if popen_uid is not None else None,
            )
        except BaseException:
            for fd in (to_worker, from_worker, console):
                os.close(fd)
            raise
        finally:
            for fd in (to_worker_r, from_worker_w, console_w):
                os.close(fd)
        return Spawned(process, to_worker, from_worker, console)

    def close(self) -> None:
        """Give this process's uid range back, and remove the exported filter."""
        if self.node is not None:
            self.node.close()
        if self._claimed is not None:
            os.close(self._claimed[1])
            self._claimed = None

    def _uid_range(self) -> int:
        """A range of host uids no other live server process on this host uses.

        Claimed by holding a lock file for this process's lifetime, so that two
        server processes (uvicorn workers, say) never give two workers one uid,
        which would let them share a process limit.
        """
        if self._claimed is None:
            try:
                # Host-wide, not per data dir: two servers must never share a uid.
                self._claimed = claim_lock("authhooks-sandbox-uids", range(_RANGES))
            except OSError as error:
                raise SandboxUnavailable(f"cannot claim a range of sandbox uids: {error}") from None
            if self._claimed is None:
                raise SandboxUnavailable("no free range of sandbox uids on this host")
        return self._claimed[0]


@dataclass
class NodeRuntime:
    """Node.js for JavaScript hooks: the binary, what it loads, and the seccomp filter
    the Python workers install on themselves, exported for confine.c to load."""

    binary: Path
    binds: list[Path]  # the binary and its shared libraries, bound where they are
    filter: Path
    _directory: Path

    @classmethod
    def discover(cls, setting: str, seccomp_library: Path) -> NodeRuntime:
        """SandboxUnavailable when there is no usable Node.js, or its worker is not built."""
        found = shutil.which("node") if setting == "auto" else setting
        if not found:
            raise SandboxUnavailable("Node.js is not installed (apt-get install nodejs)")
        binary = Path(found).resolve()
        try:
            version = subprocess.run(
                [str(binary), "--version"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
                env={},
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            raise SandboxUnavailable(f"cannot run {binary}: {error}") from None
        numbers = re.match(r"v(\d+)\.(\d+)", version)
        if numbers is None or (int(numbers[1]), int(numbers[2])) < MIN_NODE:
            raise SandboxUnavailable(f"Node.js {version} is older than 20 (the oldest LTS kept)")
        for needed in ("worker.js", "confine.so", "node_modules"):
            if not (NODE_DIR / needed).exists():
                raise SandboxUnavailable(
                    f"{NODE_DIR / needed} is missing: run scripts/setup.sh (make run does)"
                )
        directory = Path(tempfile.mkdtemp(prefix="authhooks-filter-"))
        # Every worker uid reads it (it is no secret: the rules are in the source).
        directory.chmod(0o755)
        filter_path = directory / "filter.bpf"
        seccomp.export(str(filter_path), str(seccomp_library))
        binds = sorted({binary, *_shared_libraries([binary])})
        return cls(binary, binds, filter_path, directory)

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def private_directory(path: Path) -> Path:
    """``path``, a directory of this process's user that no other user can use:
    made (0700) if missing, refused (PermissionError) if it is anything else.

    For what the server keeps in the system's temporary directory, where any
    local user could have made it first: one owned by another user, open to
    others or a symbolic link could hold links that turn the lock files root
    opens into files anywhere (``0.lock -> /etc/nologin``), or stop every start.
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    problem = why_not_private(path)
    if problem is not None:
        raise PermissionError(f"refusing {path}: {problem}; remove it, or set TMPDIR elsewhere")
    return path


def claim_lock(name: str, candidates: Iterable[int]) -> tuple[int, int] | None:
    """The first of ``candidates`` no other process on this host holds, and the
    descriptor that holds it (until it is closed, or the process exits): a lock
    file in the private directory ``name`` of the system's temporary directory."""
    directory = private_directory(Path(tempfile.gettempdir()) / name)
    for candidate in candidates:
        # Only this user can have left a link there; a lock still never follows one.
        fd = os.open(directory / f"{candidate}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return candidate, fd
    return None


def lower_autogroup(pid: int, nice: int) -> bool:
    """Give the session of process ``pid`` (a worker's) scheduler autogroup ``nice``;
    False if the kernel said to try again later.

    With autogroups (``kernel.sched_autogroup_enabled``, the default on desktop
    and many server kernels), each session is a group that gets an equal share
    of the CPU, whatever the nice of the processes inside: every worker, being
    a session of its own, would weigh as much as the whole server. The worker
    also lowers its own nice (``worker.limit_resources``), which is what counts
    where autogroups are off or the server runs in a cgroup of its own. The
    kernel takes at most ten such writes a second from a server that does not
    run as root (EAGAIN).
    """
    global _autogroup_warned
    try:
        with open(f"/proc/{pid}/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except FileNotFoundError:  # no autogroups here: the worker's own nice does it all
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if not _autogroup_warned:
            _autogroup_warned = True
            log.warning(
                "cannot lower sandboxed workers' autogroup priority (%s): hooks that "
                "burn CPU weigh as much as the server where autogroups are on",
                error.strerror,
            )
    return True


_autogroup_warned = False


def _hook_libraries() -> list[Path]:
    """The directories of HOOK_LIBRARIES this server has (a package each)."""
    found = []
    for name in HOOK_LIBRARIES:
        spec = importlib.util.find_spec(name)
        locations = spec.submodule_search_locations if spec is not None else None
        if locations:
            found.append(Path(next(iter(locations))).resolve())
    return found


def _ca_bundle(setting: str) -> Path | None:
    """The CA bundle file to bind into sandboxes: the setting, else the system's
    (where this Python's OpenSSL looks first, then Debian's), else certifi's."""
    if setting:
        return Path(setting).resolve()
    candidates = [ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"]
    with contextlib.suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    for candidate in candidates:
        if candidate and _others_can_read(Path(candidate)):
            return Path(candidate).resolve()
    return None


def _choose_python(setting: str, want_unprivileged: bool) -> Path:
    own = Path(os.path.realpath(sys.executable))
    if setting != "auto":
        return Path(os.path.realpath(setting))
    if not want_unprivileged or _others_can_read(own):
        return own
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if system.exists() and _others_can_read(system.resolve()):
        return system.resolve()
    return own


def _interpreter_paths(python: Path) -> tuple[str, str]:
    try:
        found = subprocess.run(
            [str(python), "-I", "-S", "-c", _DISCOVER],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={},
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SandboxUnavailable(f"cannot run the hook interpreter {python}: {error}") from None
    info = json.loads(found.stdout)
    if tuple(info["version"]) < (3, 11):
        raise SandboxUnavailable(f"the hook interpreter {python} is older than Python 3.11")
    return info["stdlib"], info["platstdlib"]


def _shared_libraries(files: list[Path]) -> list[Path]:
    """Every shared library (and the loader) these executables and modules load."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise SandboxUnavailable("ldd is missing (Debian package libc-bin)")
    output = subprocess.run(
        [ldd, *map(str, files)], capture_output=True, text=True, timeout=60, check=False, env={}
    ).stdout
    return sorted({Path(path) for path in re.findall(r"(/\S+) \(0x", output)})


def _find_library(name: str) -> Path:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        output = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=30, check=False, env={}
        ).stdout
    except OSError:
        output = ""
    for line in output.splitlines():
        if line.strip().startswith(name + " ") and "=>" in line:
            return Path(line.split("=>", 1)[1].strip())
    raise SandboxUnavailable(f"{name} is missing (Debian package libseccomp2)")


def _optional_library(name: str) -> Path | None:
    try:
        return _find_library(name)
    except SandboxUnavailable:
        return None


def _others_can_read(path: Path) -> bool:
    """Whether a user with no relation to the file's owner can reach and read ``path``."""
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
