"""Hostile hooks, each run through the real sandbox. Every case asserts that
nothing leaked or the limit held, and that the runtime still serves the next
call (``healthy``)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from authhooks.runtime.outcome import BadResult, Crashed, HookRaised, OutOfMemory, Timeout
from authhooks.runtime.sandbox import CA_MOUNT
from tests.runtime.conftest import Harness

CANARY = "canary-value-from-the-server-environment"


@pytest.fixture(autouse=True)
def still_healthy(harness: Harness) -> Iterator[None]:
    yield
    harness.healthy()


@pytest.fixture
def server_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Files and an environment like a server's: a master key and a database."""
    monkeypatch.setenv("AUTHHOOKS_MASTER_KEY", CANARY)
    (tmp_path / "master.key").write_text(CANARY)
    (tmp_path / "authhooks.db").write_text(CANARY)
    return tmp_path


def test_server_files_are_not_there(harness: Harness, server_secrets: Path) -> None:
    outcome = harness.run(
        """
        import os
        def hook(paths):
            found = {}
            for path in paths:
                try:
                    found[path] = open(path).read()
                except OSError as error:
                    found[path] = type(error).__name__
            found["/"] = sorted(os.listdir("/"))
            return found
        """,
        {
            "paths": [
                str(server_secrets / "master.key"),
                str(server_secrets / "authhooks.db"),
                "/etc/passwd",
                "/etc/shadow",
                str(Path.cwd() / ".authhooks" / "master.key"),
            ]
        },
    )
    assert CANARY not in str(outcome.result)
    assert outcome.result["/"] == ["dev", "lib", "lib64", "opt", "proc", "tmp", "usr"] or set(
        outcome.result["/"]
    ) <= {"dev", "lib", "lib64", "opt", "proc", "tmp", "usr", "root"}
    assert all(value == "FileNotFoundError" for key, value in outcome.result.items() if key != "/")


def test_walking_subclasses_gains_nothing(harness: Harness, server_secrets: Path) -> None:
    outcome = harness.run(
        """
        def hook(path):
            classes = list(object.__subclasses__())
            while classes:
                cls = classes.pop()
                if cls.__name__ == "FileIO":
                    try:
                        return cls(path).read().decode()
                    except OSError as error:
                        return type(error).__name__
                classes.extend(type.__subclasses__(cls))
        """,
        {"path": str(server_secrets / "master.key")},
    )
    assert outcome.result == "FileNotFoundError"


def test_environment_and_process_table_hold_nothing_of_the_server(
    harness: Harness, server_secrets: Path
) -> None:
    outcome = harness.run(
        """
        import os
        def hook(server_pid):
            pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
            seen = {"env": dict(os.environ), "pids": pids}
            for name in ("/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline",
                         f"/proc/{server_pid}/environ", f"/proc/{server_pid}/mem"):
                try:
                    seen[name] = open(name, "rb").read(4096).decode("latin-1")
                except OSError as error:
                    seen[name] = type(error).__name__
            return seen
        """,
        {"server_pid": os.getpid()},
    )
    seen = outcome.result
    assert CANARY not in str(seen)
    # PWD is set by bwrap's --chdir, the rest by the sandbox: nothing of the server.
    ca = {
        "SSL_CERT_FILE": CA_MOUNT,
        "SSL_CERT_DIR": str(Path(CA_MOUNT).parent),
        "REQUESTS_CA_BUNDLE": CA_MOUNT,
    }
    assert seen["env"] == {"PWD": "/tmp", **ca}
    assert seen["pids"] == ["1"]  # the worker itself is pid 1: nothing else is visible
    assert sorted(seen["/proc/1/environ"].split("\x00")) == sorted(
        ["", "PWD=/tmp", *(f"{name}={value}" for name, value in ca.items())]
    )
    assert seen[f"/proc/{os.getpid()}/environ"] == "FileNotFoundError"


def test_another_hooks_secrets_are_out_of_reach(harness: Harness) -> None:
    writer = harness.run(
        """
        SECRET = None
        def hook(context):
            global SECRET
            SECRET = context["secrets"]["TOKEN"]
            open("/tmp/stash", "w").write(SECRET)
            return "stored"
        """,
        {"context": {"secrets": {"TOKEN": CANARY}}},
        secrets=[CANARY],
    )
    assert writer.result == "stored"
    reader = harness.run(
        """
        import gc, os, sys
        def hook():
            found = []
            try:
                found.append(open("/tmp/stash").read())
            except OSError:
                pass
            found += [str(getattr(m, "SECRET", "")) for m in list(sys.modules.values())]
            found += [p for p in os.listdir("/proc") if p.isdigit()]
            return found
        """,
    )
    assert CANARY not in str(reader.result)


@pytest.mark.parametrize(
    ("family", "kind", "address", "expected"),
    [
        # TCP sockets exist, for the egress broker's listener on the sandbox's own loopback;
        # nothing else is there, and nothing beyond it is reachable.
        ("AF_INET", "SOCK_STREAM", ("127.0.0.1", 5432), ["connect", errno.ECONNREFUSED]),
        ("AF_INET6", "SOCK_STREAM", ("::1", 5432), ["connect", errno.ECONNREFUSED]),
        ("AF_INET", "SOCK_DGRAM", ("1.1.1.1", 53), ["socket", errno.EPERM]),
        ("AF_UNIX", "SOCK_DGRAM", None, ["socket", errno.EPERM]),
        ("AF_INET", "SOCK_STREAM", ("93.184.216.34", 80), ["connect", errno.ENETUNREACH]),
        ("AF_INET", "SOCK_RAW", None, ["socket", errno.EPERM]),
        ("AF_NETLINK", "SOCK_RAW", None, ["socket", errno.EPERM]),
        ("AF_PACKET", "SOCK_RAW", None, ["socket", errno.EPERM]),
        ("AF_BLUETOOTH", "SOCK_STREAM", None, ["socket", errno.EPERM]),
    ],
)
def test_no_network_beyond_the_sandbox(
    harness: Harness,
    family: str,
    kind: str,
    address: tuple[str, int] | None,
    expected: list[object],
) -> None:
    outcome = harness.run(
        """
        import socket
        def hook(family, kind, address):
            try:
                s = socket.socket(getattr(socket, family), getattr(socket, kind))
            except OSError as error:
                return ["socket", error.errno]
            try:
                s.connect(tuple(address))
            except OSError as error:
                return ["connect", error.errno]
            return ["connected"]
        """,
        {"family": family, "kind": kind, "address": address},
    )
    assert outcome.result == expected


def test_infinite_loop_times_out(harness: Harness) -> None:
    outcome = harness.run("def hook():\n    while True:\n        pass\n", timeout=0.5)
    assert outcome.failure == Timeout(0.5)


def test_ignoring_sigterm_does_not_help(harness: Harness) -> None:
    outcome = harness.run(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "def hook():\n    time.sleep(60)\n",
        timeout=0.5,
    )
    assert outcome.failure == Timeout(0.5)


def test_memory_bomb_is_out_of_memory(harness: Harness) -> None:
    version = harness.version(
        "def hook():\n    x = []\n    while True:\n        x.append(' ' * 10**6)\n"
    )
    outcome = harness.invoke(version)
    assert isinstance(outcome.failure, OutOfMemory)
    assert isinstance(harness.invoke(version).failure, OutOfMemory)  # a fresh worker each time


def test_fork_bomb_cannot_fork(harness: Harness) -> None:
    outcome = harness.run("import os\ndef hook():\n    while True:\n        os.fork()\n")
    assert isinstance(outcome.failure, HookRaised)
    assert outcome.failure.type == "PermissionError"


def test_subprocess_and_exec_are_refused(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os, subprocess
        def hook():
            results = []
            for attempt in (lambda: subprocess.run(["/bin/sh", "-c", "id"]),
                            lambda: os.execv("/usr/bin/python3.11", ["python3"]),
                            lambda: os.posix_spawn("/bin/sh", ["sh"], {})):
                try:
                    attempt()
                    results.append("ran")
                except OSError as error:
                    results.append(type(error).__name__)
            return results
        """,
    )
    assert "ran" not in outcome.result


def test_double_forked_daemon_cannot_exist(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os
        def hook():
            try:
                if os.fork() == 0:
                    if os.fork() == 0:
                        while True:
                            pass
                    os._exit(0)
            except OSError as error:
                return error.errno
        """,
    )
    assert outcome.result == errno.EPERM


def test_thread_bomb_is_bounded(harness: Harness) -> None:
    outcome = harness.run(
        """
        import threading, time
        def hook():
            started = 0
            try:
                while True:
                    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
                    started += 1
            except (RuntimeError, MemoryError):
                return started
        """,
    )
    assert outcome.ok, outcome
    assert outcome.result < 64


def test_huge_file_in_tmp_is_refused(harness: Harness) -> None:
    outcome = harness.run(
        """
        def hook():
            with open("/tmp/big", "wb") as f:
                while True:
                    f.write(b"x" * 1024 * 1024)
        """,
    )
    assert isinstance(outcome.failure, HookRaised)
    assert outcome.failure.type == "OSError"


def test_printing_gigabytes_is_capped(harness: Harness) -> None:
    outcome = harness.run(
        "def hook():\n    line = 'x' * 1000\n    while True:\n        print(line)\n", timeout=1.5
    )
    assert outcome.failure == Timeout(1.5)
    assert len(outcome.console) <= 200


def test_raw_output_flood_kills_the_worker(harness: Harness) -> None:
    outcome = harness.run(
        "import os\ndef hook():\n    while True:\n        os.write(1, b'x' * 65536)\n", timeout=5
    )
    assert isinstance(outcome.failure, Crashed)
    assert "flooded" in outcome.failure.reason


def test_forged_frames_kill_the_worker(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os
        def hook():
            for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
                if fd > 2:
                    try:
                        os.write(fd, b"\\xff\\xff\\xff\\xff garbage")
                    except OSError:
                        pass
            return "done"
        """,
    )
    assert isinstance(outcome.failure, Crashed)
    assert "protocol" in outcome.failure.reason


def forging(frame_body: bytes) -> str:
    """A hook that writes ``frame_body`` as a frame to every descriptor it holds
    past 2 (its answer pipe among them), then answers for real."""
    return f"""
import os, struct
def hook():
    body = {frame_body!r}
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        if fd > 2:
            try:
                os.write(fd, struct.pack(">I", len(body)) + body)
            except OSError:
                pass
    return "real"
"""


def test_forged_answer_for_another_call_is_refused(harness: Harness) -> None:
    outcome = harness.run(forging(b'{"op":"result","id":999,"value":"forged"}'))
    assert outcome.result != "forged"
    assert isinstance(outcome.failure, Crashed)


def test_a_forged_answer_with_a_lone_surrogate_is_refused(harness: Harness) -> None:
    """Escaped as JSON, half a surrogate pair decodes to a string no text column
    takes: stored, it would have cost every record of its batch. The answer is
    for the worker's first call, so only its text can give it away."""
    error = rb'{"type":"E","message":"\ud800"}'
    outcome = harness.run(forging(b'{"op":"error","id":1,"kind":"raised","error":' + error + b"}"))
    assert isinstance(outcome.failure, Crashed), outcome
    assert "surrogate" in outcome.failure.reason
    harness.healthy()


def test_a_frame_larger_than_an_answer_is_refused_from_its_header(harness: Harness) -> None:
    """No frame a worker may send is larger than a result: a header announcing
    more is refused at once, before its body is read or waited for."""
    outcome = harness.run(
        """
        import os, struct
        def hook():
            for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
                if fd > 2:
                    try:
                        os.write(fd, struct.pack(">I", 1024 * 1024 + 1))
                    except OSError:
                        pass
            return "real"
        """,
    )
    assert isinstance(outcome.failure, Crashed), outcome
    assert "exceeds" in outcome.failure.reason


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"op":"log","id":1,"stream":"stdout","line":"x","pad":[[],[]]}', "malformed"),
        (b'{"op":"log","id":1,"stream":"stdout","line":"' + b"x" * 40_000 + b'"}', "length"),
        (b'{"op":"log","id":1,"stream":"stdout","line":["x"]}', "malformed"),
    ],
)
def test_a_console_line_is_that_and_no_more(harness: Harness, body: bytes, says: str) -> None:
    """A console line's frame is taken apart as one, never parsed as any JSON:
    anything more in it, or a line longer than the worker would send, kills it."""
    outcome = harness.run(forging(body))
    assert isinstance(outcome.failure, Crashed), outcome
    assert says in outcome.failure.reason


def test_a_huge_error_message_is_cut_not_refused(harness: Harness) -> None:
    outcome = harness.run("def hook():\n    raise ValueError('x' * 5_000_000)\n")
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.message == "x" * 4000


def test_huge_and_non_json_results(harness: Harness) -> None:
    assert isinstance(harness.run("def hook():\n    return {1, 2}\n").failure, BadResult)
    deep = harness.run(
        "def hook():\n    x = []\n    for _ in range(10000):\n        x = [x]\n    return x\n"
    )
    assert isinstance(deep.failure, BadResult)


def test_exit_and_interrupt_from_a_hook(harness: Harness) -> None:
    for source, expected in (
        ("import sys\ndef hook():\n    sys.exit(3)\n", "SystemExit"),
        ("def hook():\n    raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        (
            "def hook():\n    try:\n        return 1\n    finally:\n"
            "        raise ValueError('from finally')\n",
            "ValueError",
        ),
    ):
        outcome = harness.run(source)
        assert isinstance(outcome.failure, HookRaised)
        assert outcome.failure.type == expected


def test_hard_exit_is_a_crash(harness: Harness) -> None:
    version = harness.version("import os\ndef hook(code):\n    os._exit(code)\n")
    outcome = harness.invoke(version, {"code": 3})
    assert isinstance(outcome.failure, Crashed)
    assert "status 3" in outcome.failure.reason
    assert isinstance(harness.invoke(version, {"code": 4}).failure, Crashed)


def test_ctypes_cannot_reach_the_kernel_interfaces(harness: Harness) -> None:
    outcome = harness.run(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def call(name, *args):
            result = getattr(libc, name)(*args)
            return ctypes.get_errno() if result == -1 else "allowed"
        def hook():
            return {
                "ptrace": call("ptrace", 16, 1, None, None),   # PTRACE_ATTACH to pid 1
                "mount": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
                "unshare": call("unshare", 0x10000000),        # CLONE_NEWUSER
                "setuid": call("setuid", 0),
                "chroot": call("chroot", b"/tmp"),
            }
        """,
    )
    # EPERM from seccomp; setuid(0) is EINVAL: uid 0 does not exist in the sandbox.
    assert outcome.result == {
        "ptrace": errno.EPERM,
        "mount": errno.EPERM,
        "unshare": errno.EPERM,
        "setuid": errno.EINVAL,
        "chroot": errno.EPERM,
    }


def test_a_hook_cannot_regain_the_cpu_priority_it_was_given(harness: Harness) -> None:
    """Workers run at nice 10, in a session (a scheduler autogroup) at nice 10: a hook
    burning CPU yields to the server. It cannot lower either, nor leave the session."""
    outcome = harness.run(
        """
        import ctypes, fcntl, os, platform, resource, termios
        libc = ctypes.CDLL(None, use_errno=True)
        def errno_of(function, *args):
            try:
                function(*args)
                return "allowed"
            except OSError as error:
                return error.errno
        def hook():
            found = {"nice": os.getpriority(os.PRIO_PROCESS, 0)}
            found["lower"] = errno_of(os.setpriority, os.PRIO_PROCESS, 0, 0)
            found["setsid"] = errno_of(os.setsid)
            read, _ = os.pipe()
            found["tiocsti"] = errno_of(fcntl.ioctl, read, termios.TIOCSTI, b"x")
            # The kernel reads the request as 32 bits: high bits do not slip past.
            wide = libc.ioctl(read, ctypes.c_ulong(termios.TIOCSTI | (1 << 32)), b"x")
            found["tiocsti-wide"] = ctypes.get_errno() if wide == -1 else "allowed"
            try:
                with open("/proc/self/autogroup", "w") as autogroup:
                    autogroup.write("0")
                found["autogroup"] = "written"
            except OSError as error:
                found["autogroup"] = error.errno
            found["limits"] = [
                resource.getrlimit(limit)
                for limit in (resource.RLIMIT_NICE, resource.RLIMIT_RTPRIO)
            ]
            found["realtime"] = errno_of(
                os.sched_setscheduler, 0, os.SCHED_FIFO, os.sched_param(1)
            )
            # Its own process group: kill(0, ...) reaches nothing outside the sandbox.
            found["group"] = os.getpgid(0) == os.getpid()
            number = {"x86_64": 251, "aarch64": 30}.get(platform.machine())
            if number is not None:  # ioprio_set(IOPRIO_WHO_PROCESS, 0, best effort 0)
                raised = libc.syscall(number, 1, 0, (2 << 13) | 0)
                found["ioprio"] = ctypes.get_errno() if raised == -1 else "allowed"
            else:
                found["ioprio"] = errno.EPERM
            return found
        """,
    )
    assert outcome.result == {
        "nice": 10,
        "lower": errno.EACCES,
        "setsid": errno.EPERM,
        "tiocsti": errno.EPERM,
        "tiocsti-wide": errno.EPERM,
        "autogroup": errno.EROFS,
        "limits": [[0, 0], [0, 0]],
        "realtime": errno.EPERM,
        "group": True,
        "ioprio": errno.EPERM,
    }
    version = harness.version("def hook():\n    return 1\n")
    harness.invoke(version)
    (pid,) = harness.runtime.worker_pids(version.key)
    autogroups = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if autogroups.exists() and autogroups.read_text().strip() == "1":
        with open(f"/proc/{pid}/autogroup") as autogroup:  # "/autogroup-N nice 10"
            assert autogroup.read().split()[-1] == "10"


def test_no_privileges_and_no_setuid_programs(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os
        def hook():
            lines = open("/proc/self/status").read().splitlines()
            status = dict(line.split(":", 1) for line in lines)
            setuid = []
            for root, _, files in os.walk("/"):
                if root.startswith("/proc"):
                    continue
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        if os.stat(path).st_mode & 0o6000:
                            setuid.append(path)
                    except OSError:
                        pass
            return {"uid": os.getuid(), "cap": status["CapEff"].strip(),
                    "nnp": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
                    "setuid": setuid}
        """,
    )
    assert outcome.result == {
        "uid": 65534,
        "cap": "0000000000000000",
        "nnp": "1",
        "seccomp": "2",
        "setuid": [],
    }


def test_descriptors_lead_nowhere(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os
        def hook():
            found = {}
            for fd in os.listdir("/proc/self/fd"):
                try:
                    found[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    pass  # the listing's own descriptor
            return found
        """,
    )
    targets = [target for target in outcome.result.values() if not target.startswith("pipe:")]
    # Only the listing's own descriptor (/proc/...) and /dev/null may be non-pipes.
    assert all(target.startswith(("/proc/", "/dev/null")) for target in targets), outcome.result


def test_workers_run_on_their_own_host_uid(harness: Harness) -> None:
    version = harness.version("def hook():\n    return 1\n")
    harness.invoke(version)
    (pid,) = harness.runtime.worker_pids(version.key)
    with open(f"/proc/{pid}/status") as status:
        uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
    sandbox = harness.runtime.sandbox
    if sandbox.separate_uids:
        assert uid >= sandbox.settings.uid_base
    else:
        assert uid == os.geteuid()


def test_same_uid_mode_holds_too(make_harness: object, server_secrets: Path) -> None:
    from authhooks.runtime.sandbox import SandboxSettings

    same = make_harness(sandbox=SandboxSettings(uid_base=0))  # type: ignore[operator]
    assert not same.runtime.sandbox.separate_uids
    outcome = same.run(
        "import os\ndef hook(path):\n    try:\n        return open(path).read()\n"
        "    except OSError as error:\n        return type(error).__name__\n",
        {"path": str(server_secrets / "master.key")},
    )
    assert outcome.result == "FileNotFoundError"
    forked = same.run("import os\ndef hook():\n    os.fork()\n")
    assert isinstance(forked.failure, HookRaised)
    assert forked.failure.type == "PermissionError"


def test_the_worker_is_alone_and_cannot_opt_out_of_dying(harness: Harness) -> None:
    outcome = harness.run(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def hook():
            result = libc.prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: 0
            return {"pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
                    "pdeathsig": ctypes.get_errno() if result == -1 else "allowed"}
        """,
    )
    assert outcome.result == {"pids": ["1"], "pdeathsig": errno.EPERM}


def test_only_tmp_is_writable_and_no_memfd(harness: Harness) -> None:
    outcome = harness.run(
        """
        import os
        def hook():
            found = {}
            for path in ("/x", "/dev/shm/x", "/opt/x", "/dev/x", "/tmp/x"):
                try:
                    open(path, "w").write("x")
                    found[path] = "written"
                except OSError as error:
                    found[path] = error.errno
            try:
                os.memfd_create("x")
                found["memfd"] = "created"
            except OSError as error:
                found["memfd"] = error.errno
            return found
        """,
    )
    written = [path for path, result in outcome.result.items() if result in ("written", "created")]
    assert written == ["/tmp/x"], outcome.result


def test_frames_between_calls_kill_the_worker(harness: Harness) -> None:
    version = harness.version(
        """
        import json, os, struct, threading, time, secrets
        TOKEN = secrets.token_hex()
        def spam():
            time.sleep(0.2)
            body = json.dumps({"op": "log", "id": 1, "stream": "stdout", "line": "x"}).encode()
            for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
                if fd > 2:
                    try:
                        os.write(fd, struct.pack(">I", len(body)) + body)
                    except OSError:
                        pass
        def hook():
            threading.Thread(target=spam, daemon=True).start()
            return TOKEN
        """
    )
    first = harness.invoke(version).result
    import time

    time.sleep(0.6)
    assert harness.invoke(version).result != first  # the spammer's worker was replaced


def test_background_work_after_a_call_gets_the_worker_killed(make_harness: object) -> None:
    fast = make_harness(reap_interval=0.2)  # type: ignore[operator]
    version = fast.version(
        """
        import secrets, threading
        TOKEN = secrets.token_hex()
        def burn():
            while True:
                pass
        def hook():
            threading.Thread(target=burn, daemon=True).start()
            return TOKEN
        """
    )
    first = fast.invoke(version).result
    (pid,) = fast.runtime.worker_pids(version.key)
    import time

    deadline = time.monotonic() + 10  # a busy machine gives the burner less CPU
    while pid in fast.runtime.worker_pids(version.key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fast.invoke(version).result != first
