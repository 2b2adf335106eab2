"""Hostile JavaScript hooks, each run through the real sandbox, as
``test_hostile.py`` runs Python ones. Every case asserts that nothing leaked
or the limit held, and that the runtime still serves the next call
(``healthy_js``).

What Node.js offers beyond Python's standard library is here too: modules a
hook may not require (``child_process``, ``worker_threads``, ``vm``,
``inspector``...) and the other ways to reach them (``process.mainModule``,
``process.getBuiltinModule``, a dependency's own ``require``), which gain
nothing: the operating system refuses what they would do.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authhooks.runtime.outcome import (
    BadResult,
    Crashed,
    HookRaised,
    LoadFailed,
    OutOfMemory,
    Timeout,
)
from authhooks.runtime.sandbox import CA_MOUNT, NODE_MOUNT
from authhooks.runtime.supervisor import Entry
from tests.conftest import reachable_directory
from tests.runtime.conftest import Harness

CANARY = "canary-value-from-the-server-environment"


@pytest.fixture(autouse=True)
def still_healthy(harness: Harness) -> Iterator[None]:
    if harness.runtime.sandbox.node is None:
        pytest.skip(f"JavaScript hooks cannot run here: {harness.runtime.sandbox.node_unavailable}")
    yield
    harness.healthy_js()


@pytest.fixture
def server_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Files and an environment like a server's: a master key and a database."""
    monkeypatch.setenv("AUTHHOOKS_MASTER_KEY", CANARY)
    (tmp_path / "master.key").write_text(CANARY)
    (tmp_path / "authhooks.db").write_text(CANARY)
    return tmp_path


def no_server_paths(*texts: object) -> None:
    """Nothing a hook sees of its errors names the worker's own files."""
    for text in texts:
        assert NODE_MOUNT not in str(text), text


# --- files ---------------------------------------------------------------------------


def test_server_files_are_not_there(harness: Harness, server_secrets: Path) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function (paths) {
          const found = {};
          for (const path of paths) {
            try {
              found[path] = fs.readFileSync(path, 'utf8');
            } catch (error) {
              found[path] = error.code;
            }
          }
          found['/'] = fs.readdirSync('/').sort();
          found['/opt'] = fs.readdirSync('/opt').sort();
          return found;
        };
        """,
        {
            "paths": [
                str(server_secrets / "master.key"),
                str(server_secrets / "authhooks.db"),
                "/etc/passwd",
                "/etc/shadow",
                "/etc/resolv.conf",
                str(Path.cwd() / ".authhooks" / "master.key"),
                str(Path.home() / ".npmrc"),
            ]
        },
    )
    assert CANARY not in str(outcome.result), outcome
    found = outcome.result
    assert set(found.pop("/")) <= {"dev", "lib", "lib64", "opt", "proc", "tmp", "usr", "root"}
    # The CA bundle, the filter confine.c loads, the worker's own files; neither
    # authhooks' Python package nor any dependencies (this version declares none).
    assert found.pop("/opt") == ["authhooks-ca", "authhooks-filter.bpf", "authhooks-node"]
    assert set(found.values()) == {"ENOENT"}, found


def test_only_tmp_is_writable(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const found = {};
          for (const path of ['/x', '/dev/shm/x', '/opt/x', '/opt/authhooks-node/worker.js',
                              '/usr/bin/node', '/dev/x', '/proc/x', '/tmp/x']) {
            try {
              fs.writeFileSync(path, 'x');
              found[path] = 'written';
            } catch (error) {
              found[path] = error.code;
            }
          }
          return found;
        };
        """,
    )
    written = [path for path, result in outcome.result.items() if result == "written"]
    assert written == ["/tmp/x"], outcome.result


def test_proc_is_read_only(harness: Harness) -> None:
    """Nothing under /proc takes a write: not the worker's priority, its OOM score,
    its memory nor the kernel's knobs."""
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const found = {};
          const paths = ['/proc/self/autogroup', '/proc/self/oom_score_adj', '/proc/self/mem',
                         '/proc/self/comm', '/proc/sysrq-trigger', '/proc/sys/kernel/hostname'];
          for (const path of paths) {
            try {
              fs.writeFileSync(path, '0');
              found[path] = 'written';
            } catch (error) {
              found[path] = error.code;
            }
          }
          return found;
        };
        """,
    )
    assert "written" not in outcome.result.values(), outcome.result


def test_a_huge_file_in_tmp_is_refused(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const found = {};
          const chunk = Buffer.alloc(1024 * 1024, 120);
          for (const [name, files] of [['one', 1], ['many', 32]]) {
            try {
              for (let n = 0; n < files; n += 1) {
                const fd = fs.openSync(`/tmp/${name}-${n}`, 'w');
                for (let i = 0; i < (files === 1 ? 64 : 7); i += 1) fs.writeSync(fd, chunk);
                fs.closeSync(fd);
              }
              found[name] = 'written';
            } catch (error) {
              found[name] = error.code;
            }
          }
          return found;
        };
        """,
    )
    # 8 MiB a file (RLIMIT_FSIZE: Node ignores SIGXFSZ, so the write fails), 16 MiB in all.
    assert outcome.result == {"one": "EFBIG", "many": "ENOSPC"}, outcome


# --- the environment, the process table, other hooks ---------------------------------


def test_environment_and_process_table_hold_nothing_of_the_server(
    harness: Harness, server_secrets: Path
) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function (serverPid) {
          const seen = {
            env: { ...process.env },
            pids: fs.readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name)),
          };
          for (const path of ['/proc/1/environ', '/proc/self/environ', '/proc/1/cmdline',
                              `/proc/${serverPid}/environ`, `/proc/${serverPid}/mem`]) {
            try {
              seen[path] = fs.readFileSync(path, 'latin1');
            } catch (error) {
              seen[path] = error.code;
            }
          }
          return seen;
        };
        """,
        {"serverPid": os.getpid()},
    )
    seen = outcome.result
    assert CANARY not in str(seen), seen
    ca = {
        "SSL_CERT_FILE": CA_MOUNT,
        "SSL_CERT_DIR": str(Path(CA_MOUNT).parent),
        "REQUESTS_CA_BUNDLE": CA_MOUNT,
    }
    # The same as a Python hook's: what the confinement needed is gone before Node
    # starts (and libuv's thread pool size once it is read).
    assert seen["env"] == {"PWD": "/tmp", **ca}
    assert seen["pids"] == ["1"]  # the worker itself is pid 1: nothing else is visible
    # The environment the process started with keeps what bwrap set, all of it
    # the sandbox's own: how to confine the worker, and where the CA bundle is.
    started = dict(entry.split("=", 1) for entry in seen["/proc/1/environ"].split("\x00") if entry)
    assert set(started) == {
        "PWD",
        *ca,
        "LD_PRELOAD",
        "AUTHHOOKS_FILTER",
        "AUTHHOOKS_LIMITS",
        "AUTHHOOKS_FRAMES",
        "UV_THREADPOOL_SIZE",
    }
    assert seen[f"/proc/{os.getpid()}/environ"] == "ENOENT"


def test_setting_the_environment_stays_in_the_worker(harness: Harness) -> None:
    """A hook may change its own environment, which its version's later calls see
    (warm state, as module state is), and nothing else: no other hook's worker,
    and no process, there being none to start."""
    setter = harness.js_version(
        """
        module.exports = async function () {
          const before = process.env.MINE || null;
          Object.assign(process.env, {
            MINE: 'set', NODE_OPTIONS: '--inspect=0.0.0.0:9229', LD_PRELOAD: '/tmp/evil.so',
            HTTPS_PROXY: 'http://attacker.example:8080', UV_THREADPOOL_SIZE: '128',
          });
          return before;
        };
        """
    )
    assert harness.invoke(setter).result is None
    assert harness.invoke(setter).result == "set"
    other = harness.run_js("module.exports = async () => process.env;\n")
    assert set(other.result) == {"PWD", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}


def test_another_hooks_secrets_are_out_of_reach(harness: Harness) -> None:
    writer = harness.run_js(
        """
        const fs = require('fs');
        let SECRET = null;
        module.exports = function (context, cb) {
          SECRET = context.webtask.secrets.TOKEN;
          globalThis.SECRET = SECRET;
          process.env.SECRET = SECRET;
          fs.writeFileSync('/tmp/stash', SECRET);
          cb(null, 'stored');
        };
        """,
        {"context": {"secrets": {"TOKEN": CANARY}}},
        secrets=[CANARY],
    )
    assert writer.result == "stored", writer
    reader = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const found = [String(globalThis.SECRET), String(process.env.SECRET)];
          try {
            found.push(fs.readFileSync('/tmp/stash', 'utf8'));
          } catch (error) {
            found.push(error.code);
          }
          found.push(...fs.readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name)));
          found.push(...fs.readdirSync('/tmp'));
          return found;
        };
        """,
    )
    assert reader.ok, reader
    assert CANARY not in str(reader.result)
    assert reader.result == ["undefined", "undefined", "ENOENT", "1"]


# --- processes, threads and the modules that would start them -----------------------

SPAWNS = """
    const found = {};
    const attempt = (name, run) => {
      try {
        found[name] = run();
      } catch (error) {
        found[name] = error.code || error.message;
      }
    };
    attempt('execSync', () => cp.execSync('id').toString());
    attempt('execFileSync', () => cp.execFileSync('/usr/bin/node', ['-v']).toString());
    attempt('spawnSync', () => cp.spawnSync('/usr/bin/node', ['-v']).error.code);
    attempt('spawn', () => { cp.spawn('/usr/bin/node', ['-v']); return 'spawned'; });
    attempt('fork', () => { cp.fork('/tmp/x.js'); return 'forked'; });
    attempt('detached', () => {
      cp.spawn('/usr/bin/node', ['-e', 'setInterval(() => {}, 1000)'], { detached: true });
      return 'spawned';
    });
"""


def test_child_process_is_refused_at_require(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const found = {};
          for (const name of ['child_process', 'node:child_process', 'cluster', 'worker_threads',
                              'vm', 'inspector', 'module', 'repl', 'v8', 'wasi',
                              'node:worker_threads']) {
            try {
              require(name);
              found[name] = 'required';
            } catch (error) {
              found[name] = error.message;
            }
            try {
              process.getBuiltinModule(name);
              found[`getBuiltinModule ${name}`] = 'got';
            } catch (error) {
              found[`getBuiltinModule ${name}`] = 'refused';
            }
          }
          return found;
        };
        """,
    )
    assert outcome.ok, outcome
    for name, said in outcome.result.items():
        if name.startswith("getBuiltinModule"):
            assert said == "refused", name
        else:
            assert said == f"module '{name.removeprefix('node:')}' is not available to hooks"


def test_child_process_reached_another_way_starts_nothing(harness: Harness) -> None:
    """The worker's own require, a module's constructor: they reach
    child_process, which can start nothing (seccomp: EPERM)."""
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const results = {};
          for (const [way, cp] of [
            ['mainModule', process.mainModule.require('child_process')],
            ['constructor', process.mainModule.constructor._load('child_process')],
            ['node:', process.mainModule.require('node:child_process')],
          ]) {
        """
        + SPAWNS
        + """
            results[way] = found;
          }
          return results;
        };
        """,
    )
    assert outcome.ok, outcome
    for found in outcome.result.values():
        assert "ran" not in str(found)
        assert found["execSync"] == "EPERM"
        assert found["execFileSync"] == "EPERM"
        assert found["spawnSync"] == "EPERM"
        # An asynchronous spawn reports its failure as an event (or throws, on Node 20).
        assert found["spawn"] in ("spawned", "EPERM")
    harness.healthy_js()


@pytest.fixture
def dependency_root() -> Iterator[Path]:
    root = reachable_directory("authhooks-hostile-deps-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_dependencys_own_require_starts_nothing(make_harness: Any, dependency_root: Path) -> None:
    """A package a hook declares gets Node's real require, child_process and all:
    what it starts, it cannot start either."""
    root = dependency_root
    package = root / "set-1" / "node_modules" / "spawner"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "spawner", "version": "1.0.0"}))
    (package / "index.js").write_text(
        "const cp = require('node:child_process');\n"
        "module.exports = () => {\n" + SPAWNS + "  return found;\n};\n"
    )
    (root / "set-1" / "package.json").write_text(json.dumps({"dependencies": {"spawner": "1.0.0"}}))
    for path in [root, *root.rglob("*")]:  # workers may run on uids of their own
        path.chmod(0o755 if path.is_dir() else 0o644)
    own = make_harness(dependency_root=root)
    version = own.js_version(
        """
        const spawner = require('spawner@1.0.0');
        module.exports = async () => spawner();
        """,
        dependencies={"spawner": "1.0.0"},
        installed="set-1",
    )
    outcome = own.invoke(version)
    assert outcome.ok, outcome
    assert outcome.result["execSync"] == "EPERM"
    assert outcome.result["spawnSync"] == "EPERM"
    assert outcome.result["fork"] in ("forked", "EPERM")


def test_a_missing_store_entry_fails_without_a_server_path(
    make_harness: Any, dependency_root: Path
) -> None:
    own = make_harness(dependency_root=dependency_root)
    version = own.js_version(
        "module.exports = async () => 1;\n", dependencies={"gone": "1.0.0"}, installed="gone"
    )
    outcome = own.invoke(version)
    assert isinstance(outcome.failure, Crashed), outcome
    assert "no longer in the dependency store" in outcome.failure.reason
    assert str(dependency_root) not in str(outcome)


def test_internal_bindings_are_refused(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const found = {};
          for (const [name, reach] of [
            ['binding', () => process.binding('spawn_sync')],
            ['linkedBinding', () => process._linkedBinding('spawn_sync')],
            ['dlopen', () => process.dlopen({ exports: {} }, '/opt/authhooks-node/confine.so')],
          ]) {
            try {
              reach();
              found[name] = 'reached';
            } catch (error) {
              found[name] = error.code || error.message;
            }
          }
          return found;
        };
        """,
    )
    assert outcome.result == {
        "binding": "process.binding is not available to hooks",
        "linkedBinding": "process.binding is not available to hooks",
        "dlopen": "ERR_DLOPEN_DISABLED",
    }


def test_a_native_addon_written_to_tmp_does_not_load(harness: Harness) -> None:
    """Node runs with --no-addons: a shared object, however it got there, is refused."""
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          // A real shared object (confine.so), as a hook could bring one in its source.
          fs.copyFileSync('/opt/authhooks-node/confine.so', '/tmp/addon.node');
          const found = {};
          for (const [name, load] of [
            ['dlopen', () => process.dlopen({ exports: {} }, '/tmp/addon.node')],
            ['require', () => process.mainModule.require('/tmp/addon.node')],
            ['extension', () => process.mainModule.constructor._extensions['.node'](
              { exports: {} }, '/tmp/addon.node')],
          ]) {
            try {
              load();
              found[name] = 'loaded';
            } catch (error) {
              found[name] = error.code;
            }
          }
          found.execArgv = process.execArgv.includes('--no-addons');
          return found;
        };
        """,
    )
    assert outcome.result == {
        "dlopen": "ERR_DLOPEN_DISABLED",
        "require": "ERR_DLOPEN_DISABLED",
        "extension": "ERR_DLOPEN_DISABLED",
        "execArgv": True,
    }


def test_worker_threads_and_cluster_start_no_process(harness: Harness) -> None:
    """A worker thread is a thread of the same process: same seccomp filter, same
    limits. cluster forks, which is refused."""
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const { Worker } = process.mainModule.require('worker_threads');
          const thread = await new Promise((resolve) => {
            const worker = new Worker(
              `const { parentPort } = require('worker_threads');
               let found;
               try {
                 found = require('child_process').execSync('id').toString();
               } catch (error) {
                 found = error.code;
               }
               const status = require('fs').readFileSync('/proc/self/status', 'utf8');
               parentPort.postMessage([found, status
                 .split('\\\\n').filter((line) => /^(Seccomp|NoNewPrivs|Uid):/.test(line))]);`,
              { eval: true });
            worker.once('message', resolve);
            worker.once('error', (error) => resolve(String(error)));
          });
          const cluster = process.mainModule.require('cluster');
          let forked;
          try {
            const worker = cluster.fork();
            forked = await new Promise((resolve) => {
              worker.once('error', (error) => resolve(error.code));
              worker.once('exit', () => resolve('exited'));
              worker.once('online', () => resolve('online'));
            });
          } catch (error) {
            forked = error.code;
          }
          return { thread, forked };
        };
        """,
        timeout=10,
    )
    assert outcome.ok, outcome
    found, status = outcome.result["thread"]
    assert found == "EPERM"
    assert status == ["Uid:\t65534\t65534\t65534\t65534", "NoNewPrivs:\t1", "Seccomp:\t2"]
    assert outcome.result["forked"] in ("EPERM", "exited")


def test_a_thread_bomb_is_bounded(harness: Harness) -> None:
    """Threads are allowed (V8 and libuv need them), counted against the worker's
    process limit and its memory: a hook starting worker threads without end
    ends, one way or another, with the worker and nothing else."""
    version = harness.js_version(
        """
        module.exports = async function () {
          const { Worker } = process.mainModule.require('worker_threads');
          const started = [];
          try {
            for (let n = 0; n < 64; n += 1) {
              const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
              await new Promise((resolve, reject) => {
                worker.once('online', resolve);
                worker.once('error', reject);
              });
              started.push(worker);
            }
          } catch (error) {
            return [started.length, error.code || error.message];
          }
          return [started.length, 'all'];
        };
        """
    )
    outcome = harness.invoke(version, timeout=15)
    if outcome.ok:
        assert outcome.result[0] < 16, outcome
    else:
        # Out of memory when V8 says so; a thread that gets no memory to start in can
        # also take the worker down with a crash of its own (SIGSEGV, SIGABRT).
        assert isinstance(outcome.failure, OutOfMemory | Crashed), outcome
    harness.healthy_js()


def test_a_vm_context_escape_gains_nothing(harness: Harness) -> None:
    """Hook code already runs in the main context: escaping a vm context lands
    where it started, with the same process and the same refusals."""
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const vm = process.mainModule.require('vm');
          const escaped = vm.runInNewContext('this.constructor.constructor("return process")()');
          let spawned;
          try {
            spawned = escaped.mainModule.require('child_process').execSync('id').toString();
          } catch (error) {
            spawned = error.code;
          }
          return { same: escaped === process, spawned };
        };
        """,
    )
    assert outcome.result == {"same": True, "spawned": "EPERM"}, outcome


def test_the_inspector_gains_nothing(harness: Harness) -> None:
    """An inspector session is the same process debugging itself; a listening
    inspector is reachable from the sandbox's own loopback only."""
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const inspector = process.mainModule.require('inspector');
          const session = new inspector.Session();
          session.connect();
          const evaluated = await new Promise((resolve) => session.post('Runtime.evaluate', {
            expression:
              "process.mainModule.require('child_process').spawnSync('/usr/bin/node').error.code",
          }, (error, answer) => resolve(error ? String(error) : answer.result.value)));
          session.disconnect();
          inspector.open(0, '0.0.0.0');
          const listening = new URL(inspector.url()).port !== '';
          inspector.close();
          return { evaluated, listening };
        };
        """,
    )
    # It listens, in a network namespace of its own that has nothing but loopback
    # (test_no_network_beyond_the_sandbox): nobody outside can connect to it.
    assert outcome.result == {"evaluated": "EPERM", "listening": True}, outcome


# --- sockets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "expected"),
    [
        # TCP sockets exist, for the egress broker's listener on the sandbox's own
        # loopback; nothing else is there, and nothing beyond it is reachable.
        ("tcp", ["127.0.0.1", 5432], "ECONNREFUSED"),
        ("tcp", ["::1", 5432], "ECONNREFUSED"),
        ("tcp", ["93.184.216.34", 80], "ENETUNREACH"),
        ("tcp", ["2606:2800:220:1:248:1893:25c8:1946", 80], "ENETUNREACH"),
        ("udp4", ["1.1.1.1", 53], "EPERM"),
        ("udp6", ["::1", 53], "EPERM"),
    ],
)
def test_no_network_beyond_the_sandbox(
    harness: Harness, kind: str, target: list[object], expected: str
) -> None:
    outcome = harness.run_js(
        """
        module.exports = function (kind, target, cb) {
          const [host, port] = target;
          if (kind === 'tcp') {
            const socket = require('net').connect(port, host);
            socket.on('connect', () => cb(null, 'connected'));
            socket.on('error', (error) => cb(null, error.code));
            return;
          }
          try {
            const socket = process.mainModule.require('dgram').createSocket(kind);
            socket.on('error', (error) => cb(null, error.code));
            socket.send('x', port, host, (error) => cb(null, error ? error.code : 'sent'));
          } catch (error) {
            cb(null, error.code);
          }
        };
        """,
        {"kind": kind, "target": target},
    )
    assert outcome.result == expected, outcome


def test_names_do_not_resolve_in_the_sandbox(harness: Harness) -> None:
    """No resolver, no UDP: only the egress broker resolves names."""
    outcome = harness.run_js(
        """
        const dns = require('dns');
        module.exports = async function () {
          const lookup = await new Promise((resolve) => dns.lookup('example.com',
            (error, address) => resolve(error ? 'failed' : address)));
          const resolved = await dns.promises.resolve4('example.com').then(
            (addresses) => addresses, () => 'failed');
          return [lookup, resolved];
        };
        """,
        timeout=10,
    )
    assert outcome.result == ["failed", "failed"], outcome


# --- privileges ----------------------------------------------------------------------


def test_no_privileges_and_no_setuid_programs(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        const path = require('path');
        module.exports = async function () {
          const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8')
            .split('\\n').filter(Boolean).map((line) => line.split(/:\\s*/)));
          const setuid = [];
          const walk = (directory) => {
            for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
              const full = path.join(directory, entry.name);
              if (entry.isDirectory()) walk(full);
              else if (entry.isFile() && fs.statSync(full).mode & 0o6000) setuid.push(full);
            }
          };
          for (const top of fs.readdirSync('/')) if (top !== 'proc') walk(`/${top}`);
          const attempt = (run) => {
            try {
              run();
              return 'allowed';
            } catch (error) {
              return error.code;
            }
          };
          return {
            uid: [process.getuid(), process.geteuid(), process.getgid()],
            cap: status.CapEff, nnp: status.NoNewPrivs, seccomp: status.Seccomp, setuid,
            setuid0: attempt(() => process.setuid(0)),
            setgroups: attempt(() => process.setgroups([0])),
            nice: require('os').getPriority(),
            lower: attempt(() => require('os').setPriority(0)),
            group: fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[2],
          };
        };
        """,
    )
    assert outcome.result == {
        "uid": [65534, 65534, 65534],
        "cap": "0000000000000000",
        "nnp": "1",
        "seccomp": "2",
        "setuid": [],
        # uid 0 does not exist in the sandbox; groups cannot be set without privileges.
        "setuid0": "EINVAL",
        "setgroups": "EPERM",
        # nice 10, which a hook cannot lower (os.setPriority wraps EACCES).
        "nice": 10,
        "lower": "ERR_SYSTEM_ERROR",
        "group": "1",  # a process group of its own: kill(0, ...) reaches nothing outside
    }, outcome


def test_descriptors_lead_nowhere(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const found = {};
          for (const fd of fs.readdirSync('/proc/self/fd')) {
            try {
              found[fd] = fs.readlinkSync(`/proc/self/fd/${fd}`);
            } catch (error) {
              // the listing's own descriptor
            }
          }
          return found;
        };
        """,
    )
    targets = [target for target in outcome.result.values() if not target.startswith("pipe:")]
    # Node's own event loop (epoll, eventfds), the listing's descriptor and /dev/null.
    allowed = ("anon_inode:[eventpoll]", "anon_inode:[eventfd]", "/proc/", "/dev/null")
    assert all(target.startswith(allowed) for target in targets), outcome.result


def test_workers_run_on_their_own_host_uid(harness: Harness) -> None:
    version = harness.js_version("module.exports = async () => 1;\n")
    harness.invoke(version)
    (pid,) = harness.runtime.worker_pids(version.key)
    with open(f"/proc/{pid}/status") as status:
        uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
    sandbox = harness.runtime.sandbox
    if sandbox.separate_uids:
        assert uid >= sandbox.settings.uid_base
    else:
        assert uid == os.geteuid()


def test_signals_reach_nothing_outside(harness: Harness) -> None:
    """The worker is pid 1 of its own namespace, alone in its process group: a
    signal to every process it may signal reaches itself only, and pid 1 takes
    none it has no handler for."""
    outcome = harness.run_js(
        """
        module.exports = async function () {
          const refused = {};
          for (const target of [-1, 0, 1]) {
            try {
              process.kill(target, 'SIGKILL');
            } catch (error) {
              refused[target] = error.code;
            }
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { pid: process.pid, refused };
        };
        """,
    )
    assert outcome.ok, outcome
    # Still there to answer: the signals reached no process but its own, where pid 1
    # ignores them; the ones with no other process to reach are refused as such.
    assert outcome.result["pid"] == 1, outcome
    assert set(outcome.result["refused"].values()) <= {"ESRCH"}, outcome
    harness.healthy_js()


# --- limits --------------------------------------------------------------------------


def test_an_infinite_loop_times_out(harness: Harness) -> None:
    outcome = harness.run_js("module.exports = function () {\n  while (true) {}\n};\n", timeout=0.5)
    assert outcome.failure == Timeout(0.5)


def test_ignoring_sigterm_does_not_help(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        process.on('SIGTERM', () => {});
        process.on('SIGINT', () => {});
        module.exports = function () {
          while (true) {}
        };
        """,
        timeout=0.5,
    )
    assert outcome.failure == Timeout(0.5)


BOMBS = {
    # The V8 heap, to its cap.
    "strings": "const x = []; while (true) x.push('x'.repeat(1000) + Math.random());",
    "objects": "const x = []; while (true) x.push({ a: Math.random(), b: [1, 2, 3] });",
    "map": "const m = new Map(); let i = 0; while (true) m.set(i++, { i });",
    "array": "return new Array(2 ** 30).fill(0).length;",
    # Memory outside the heap, to RLIMIT_DATA.
    "one buffer": "return Buffer.alloc(512 * 1024 * 1024).length;",
    "buffers": "const x = []; while (true) x.push(Buffer.alloc(10 * 1024 * 1024, 1));",
    "unsafe buffers": "const x = []; while (true) x.push(Buffer.allocUnsafe(1 << 20).fill(1));",
    "array buffers": "const x = []; while (true) x.push(new ArrayBuffer(4 * 1024 * 1024));",
    "typed arrays": "const x = []; while (true) x.push(new Float64Array(1000));",
    "small buffers": "const x = []; while (true) x.push(Buffer.alloc(4096, 1));",
    # A thread of its own, with a heap of its own.
    "worker thread": """
        const { Worker } = process.mainModule.require('worker_threads');
        const code = "const x = []; while (true) x.push(new Float64Array(1000));";
        for (let n = 0; n < 4; n += 1) {
          new Worker(code, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
        }
        await new Promise((resolve) => setTimeout(resolve, 30000));
    """,
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_memory_bomb_is_out_of_memory(harness: Harness, bomb: str) -> None:
    version = harness.js_version(f"module.exports = async function () {{\n{BOMBS[bomb]}\n}};\n")
    outcome = harness.invoke(version, timeout=20)
    assert isinstance(outcome.failure, OutOfMemory), outcome
    # A fresh worker each time, and the same end.
    assert isinstance(harness.invoke(version, timeout=20).failure, OutOfMemory)


def test_a_caught_allocation_failure_is_the_hooks_business(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          try {
            Buffer.alloc(1024 * 1024 * 1024);
          } catch (error) {
            return error.name;
          }
        };
        """,
    )
    assert outcome.result == "RangeError", outcome


def test_deep_recursion_is_an_error(harness: Harness) -> None:
    outcome = harness.run_js("module.exports = async function f() {\n  return f();\n};\n")
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.type == "RangeError"
    assert outcome.failure.traceback[0].startswith("at f (hook.js:"), outcome.failure


def test_printing_gigabytes_is_capped(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = function () {
          const line = 'x'.repeat(1000);
          for (;;) console.log(line);
        };
        """,
        timeout=1.5,
    )
    assert outcome.failure == Timeout(1.5)
    assert len(outcome.console) == 200


def test_dropped_lines_are_counted(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          for (let n = 0; n < 250; n += 1) console.log(`line ${n}`);
          console.error('a\\nb\\nc');
          process.stdout.write(`${'y'.repeat(10000)}\\n`);
          return 'done';
        };
        """,
    )
    assert outcome.result == "done", outcome
    assert len(outcome.console) == 200
    assert outcome.dropped_lines == 54


def test_a_long_line_is_cut(harness: Harness) -> None:
    outcome = harness.run_js(
        "module.exports = async () => { console.log('\\u0001'.repeat(100000)); return 1; };\n"
    )
    assert outcome.ok, outcome
    assert [line.text for line in outcome.console] == ["\x01" * 2000]


def test_raw_output_flood_kills_the_worker(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = function () {
          const chunk = Buffer.alloc(65536, 120);
          for (;;) {
            try {
              fs.writeSync(1, chunk);
            } catch (error) {
              if (error.code !== 'EAGAIN') throw error; // a full pipe: try again, as a flood would
            }
          }
        };
        """,
        timeout=5,
    )
    assert isinstance(outcome.failure, Crashed), outcome
    assert "flooded" in outcome.failure.reason


def test_huge_and_non_json_results(harness: Harness) -> None:
    def result_of(expression: str) -> Any:
        return harness.run_js(f"module.exports = async () => {{\n{expression}\n}};\n")

    huge = result_of("return 'x'.repeat(2 * 1024 * 1024);")
    assert isinstance(huge.failure, BadResult), huge
    assert "the limit is 1048576" in huge.failure.reason
    for expression in (
        "return { big: 1n };",
        "const a = {}; a.a = a; return a;",
        # Deeper than a frame may be nested: a bad result, not a broken protocol.
        "let x = []; for (let i = 0; i < 100; i++) x = [x]; return x;",
        "let x = []; for (let i = 0; i < 100000; i++) x = [x]; return x;",
    ):
        outcome = result_of(expression)
        assert isinstance(outcome.failure, BadResult), (expression, outcome)
    # What JSON.stringify makes of the rest, as Auth0's hooks had it.
    plain = result_of("return { n: NaN, u: undefined, f: () => 1, d: new Date(0), s: [1, '2'] };")
    assert plain.result == {"n": None, "d": "1970-01-01T00:00:00.000Z", "s": [1, "2"]}
    deep = result_of("let x = []; for (let i = 0; i < 60; i++) x = [x]; return x;")
    assert deep.ok, deep


def test_a_huge_error_message_is_cut_not_refused(harness: Harness) -> None:
    outcome = harness.run_js(
        "module.exports = async () => { throw new Error('x'.repeat(5000000)); };\n"
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.message == "x" * 4000


# --- lone surrogates: not text, and never the protocol's end ------------------------


def test_lone_surrogates_in_results_are_bad_results(harness: Harness) -> None:
    for value in ("'a\\ud800b'", "({ ['k\\udc00']: 1 })", "['\\udbff']"):
        outcome = harness.run_js(f"module.exports = async () => {value};\n")
        assert isinstance(outcome.failure, BadResult), (value, outcome)
        assert "surrogate" in outcome.failure.reason
    # A pair is text, and so is the escape written out.
    fine = harness.run_js("module.exports = async () => ['\\ud83d\\ude00', '\\\\ud800'];\n")
    assert fine.result == ["\U0001f600", "\\ud800"], fine


def test_lone_surrogates_in_api_calls_are_bad_results(harness: Harness) -> None:
    version = harness.js_version(
        """
        exports.onExecuteThing = async (event, api) => {
          api.thing.setClaim('https://example.com/x', 'a\\ud800');
        };
        """,
        entries=(Entry("onExecuteThing", {"thing": ("set_claim",)}),),
    )
    outcome = harness.invoke(version, {"event": {}})
    assert isinstance(outcome.failure, BadResult), outcome


def test_lone_surrogates_in_console_lines_and_errors_are_replaced(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          console.log('half \\ud800 a pair');
          console.error({ key: '\\udfff' });
          const error = new Error('bad \\udc00 message');
          error.name = 'Odd\\ud800Error';
          throw error;
        };
        """,
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    # A string printed as itself is made text; util.inspect writes a lone half as
    # its escape, which is text already.
    assert [line.text for line in outcome.console] == ["half \ufffd a pair", "{ key: '\\udfff' }"]
    assert outcome.failure.message == "bad \ufffd message"
    assert outcome.failure.type == "Odd\ufffdError"


# --- forged frames -------------------------------------------------------------------


def forging(*bodies: bytes, then: str = "return 'real';") -> str:
    """A hook that writes each of ``bodies`` as a frame straight to its frame pipe
    (its descriptor is the worker's argument), then does ``then``."""
    encoded = json.dumps([base64.b64encode(body).decode() for body in bodies])
    return f"""
const fs = require('fs');
const FRAMES = Number(process.argv[2]);
module.exports = async function () {{
  for (const body of {encoded}.map((text) => Buffer.from(text, 'base64'))) {{
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    fs.writeSync(FRAMES, Buffer.concat([header, body]));
  }}
  {then}
}};
"""


@pytest.mark.parametrize(
    ("bodies", "says"),
    [
        # An answer for a call that was never made.
        ([b'{"op":"result","id":999,"value":"forged"}'], "another call"),
        # A load's answer, in the middle of a call.
        ([b'{"op":"ready","entry":"module.exports"}'], "another call"),
        ([b"\xff\xfe not JSON"], "not JSON"),
        ([b"[1, 2, 3]"], "not a JSON object"),
        ([b'{"op":"log","id":1,"stream":"stdout","line":"x","pad":[[],[]]}'], "malformed"),
        ([b'{"op":"log","id":1,"stream":"stdout","line":"' + b"x" * 40_000 + b'"}'], "length"),
        ([b'{"op":"log","id":1,"stream":"stdout","line":["x"]}'], "malformed"),
        ([b'{"op":"log","id":7,"stream":"stdout","line":"x"}'], "another call"),
        ([b'{"op":"log","id":1,"stream":"stdout","line":"x"}'] * 1000, "flooded"),
        ([b"[" * 2000 + b"]" * 2000], "not JSON"),
    ],
)
def test_forged_frames_kill_the_worker(harness: Harness, bodies: list[bytes], says: str) -> None:
    outcome = harness.run_js(forging(*bodies))
    assert outcome.result != "forged"
    assert isinstance(outcome.failure, Crashed), outcome
    assert says in outcome.failure.reason, outcome.failure


def test_a_forged_answer_with_a_lone_surrogate_is_refused(harness: Harness) -> None:
    """Escaped as JSON, half a surrogate pair decodes to a string no text column
    takes. The answer is for the worker's first call, so only its text can give
    it away."""
    error = rb'{"type":"E","message":"\ud800"}'
    outcome = harness.run_js(
        forging(b'{"op":"error","id":1,"kind":"raised","error":' + error + b"}")
    )
    assert isinstance(outcome.failure, Crashed), outcome
    assert "surrogate" in outcome.failure.reason


def test_a_frame_larger_than_an_answer_is_refused_from_its_header(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const header = Buffer.alloc(4);
          header.writeUInt32BE(1024 * 1024 + 1);
          fs.writeSync(Number(process.argv[2]), header);
          return 'real';
        };
        """,
    )
    assert isinstance(outcome.failure, Crashed), outcome
    assert "exceeds" in outcome.failure.reason


def test_half_a_frame_then_the_answer_breaks_the_protocol(harness: Harness) -> None:
    """A header promising a body the worker's own answer completes: whatever the
    supervisor reads then, it is no answer it takes."""
    outcome = harness.run_js(
        """
        const fs = require('fs');
        module.exports = async function () {
          const header = Buffer.alloc(4);
          header.writeUInt32BE(40);
          fs.writeSync(Number(process.argv[2]), header);
          return 'real';
        };
        """,
    )
    assert outcome.result != "real"
    assert isinstance(outcome.failure, Crashed), outcome


def test_frames_between_calls_kill_the_worker(harness: Harness) -> None:
    version = harness.js_version(
        """
        const fs = require('fs');
        const TOKEN = require('crypto').randomBytes(16).toString('hex');
        module.exports = async function () {
          setTimeout(() => {
            const body = Buffer.from('{"op":"log","id":1,"stream":"stdout","line":"x"}');
            const header = Buffer.alloc(4);
            header.writeUInt32BE(body.length);
            fs.writeSync(Number(process.argv[2]), Buffer.concat([header, body]));
          }, 200);
          return TOKEN;
        };
        """
    )
    first = harness.invoke(version).result
    time.sleep(0.8)
    assert harness.invoke(version).result != first  # the forger's worker was replaced


# --- after the call ------------------------------------------------------------------


def test_background_work_after_a_call_gets_the_worker_killed(make_harness: Any) -> None:
    fast = make_harness(reap_interval=0.2)
    version = fast.js_version(
        """
        const TOKEN = require('crypto').randomBytes(16).toString('hex');
        module.exports = async function () {
          setInterval(() => {
            const until = Date.now() + 50;
            while (Date.now() < until) {}
          }, 1);
          return TOKEN;
        };
        """
    )
    first = fast.invoke(version).result
    (pid,) = fast.runtime.worker_pids(version.key)
    deadline = time.monotonic() + 10  # a busy machine gives the burner less CPU
    while pid in fast.runtime.worker_pids(version.key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid not in fast.runtime.worker_pids(version.key)
    assert fast.invoke(version).result != first


def test_what_a_timer_does_between_calls_is_dropped(harness: Harness) -> None:
    """A timer left behind prints and throws after its call returned: its lines
    reach nobody, its error ends no call, and the worker serves on."""
    version = harness.js_version(
        """
        const TOKEN = require('crypto').randomBytes(16).toString('hex');
        let calls = 0;
        module.exports = async function () {
          calls += 1;
          if (calls === 1) {
            setTimeout(() => {
              console.log('from the past');
              Promise.reject(new Error('rejected late'));
              throw new Error('thrown late');
            }, 100);
          }
          return [TOKEN, calls];
        };
        """
    )
    first = harness.invoke(version)
    time.sleep(0.6)
    second = harness.invoke(version)
    assert second.ok, second
    assert second.result == [first.result[0], 2]  # the same worker
    assert second.console == ()


# --- errors: the hook's own lines, and no path of the server's -----------------------


@pytest.mark.parametrize(
    ("body", "kind", "message", "line"),
    [
        ("setTimeout(() => { null.x; }, 10);", "TypeError", "Cannot read properties of null", 3),
        (
            "setTimeout(() => { Promise.reject(new RangeError('late')); }, 10);",
            "RangeError",
            "late",
            3,
        ),
        ("setImmediate(() => { throw new SyntaxError('now'); });", "SyntaxError", "now", 3),
        ("Promise.reject(new Error('never awaited'));", "Error", "never awaited", 3),
        ("Promise.reject('just a string');", "String", "just a string", None),
        ("queueMicrotask(() => { throw new EvalError('micro'); });", "EvalError", "micro", 3),
    ],
)
def test_an_uncaught_error_during_a_call_ends_it(
    harness: Harness, body: str, kind: str, message: str, line: int | None
) -> None:
    outcome = harness.run_js(
        f"// a hook that leaves an error behind\nmodule.exports = function (cb) {{\n  {body}\n}};\n"
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.type == kind
    assert outcome.failure.message.startswith(message)
    if line is not None:
        assert f"hook.js:{line}:" in outcome.failure.traceback[0]
    assert all("hook.js" in frame for frame in outcome.failure.traceback)
    no_server_paths(outcome.failure)


def test_stacks_a_hook_prints_name_no_server_path(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = async function () {
          console.log(new Error('where').stack);
          console.error(new TypeError('printed'));
          console.trace('traced');
          try {
            await fetch('http://127.0.0.1:1/');
          } catch (error) {
            console.log(error);
          }
          const inner = () => { throw new Error('deep'); };
          try {
            inner();
          } catch (error) {
            return error.stack;
          }
        };
        """,
        timeout=10,
    )
    assert outcome.ok, outcome
    text = "\n".join(line.text for line in outcome.console)
    no_server_paths(text, outcome.result)
    assert "at module.exports (hook.js:3:" in text
    assert "Trace: traced" in text
    assert outcome.result.splitlines()[:3] == [
        "Error: deep",
        "    at inner (hook.js:11:31)",
        "    at module.exports (hook.js:13:5)",
    ]


def test_an_error_says_its_cause(harness: Harness) -> None:
    outcome = harness.run_js(
        "module.exports = async () => {\n  await fetch('http://127.0.0.1:1/');\n};\n"
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.message.startswith("fetch failed (cause: ")
    no_server_paths(outcome.failure)


def test_secrets_are_redacted_from_console_and_errors(harness: Harness) -> None:
    outcome = harness.run_js(
        """
        module.exports = function (context, cb) {
          const secret = context.webtask.secrets.API_KEY;
          console.log('the key is', secret);
          console.warn({ secret });
          console.info(`${secret.slice(0, 3)}`);
          cb(new Error(`refused ${secret}`));
        };
        """,
        {"context": {"secrets": {"API_KEY": CANARY}}},
        secrets=[CANARY],
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert [line.text for line in outcome.console] == [
        "the key is ***",
        "{ secret: '***' }",
        CANARY[:3],
    ]
    assert outcome.failure.message == "refused ***"


def test_load_errors_name_the_hooks_line(harness: Harness) -> None:
    for source, kind, line in (
        ("module.exports = async () => {\n  return 1 +;\n};\n", "SyntaxError", 2),
        ("const x = 1;\n\nnull.property;\nmodule.exports = async () => 1;\n", "TypeError", 3),
        ("require('left-pad');\nmodule.exports = async () => 1;\n", "Error", 1),
        ("module.exports = 42;\n", "LookupError", None),
    ):
        outcome = harness.run_js(source)
        assert isinstance(outcome.failure, LoadFailed), (source, outcome)
        assert outcome.failure.type == kind, outcome
        assert outcome.failure.line == line, outcome
        no_server_paths(outcome.failure)


def test_an_undeclared_module_says_so(harness: Harness) -> None:
    outcome = harness.run_js(
        "module.exports = async () => require('lodash@4.17.21');\n",
    )
    assert isinstance(outcome.failure, HookRaised), outcome
    assert outcome.failure.message == (
        "module 'lodash' is not a dependency of this hook version: "
        "declare it in the hook's dependencies"
    )


# --- the worker's end ----------------------------------------------------------------


def test_exit_and_abort_end_the_worker(harness: Harness) -> None:
    """process.exit is the worker's end, as os._exit is a Python worker's: the call
    crashed, and the next one gets a fresh worker."""
    version = harness.js_version("module.exports = async (code) => { process.exit(code); };\n")
    for code in (3, 0):
        outcome = harness.invoke(version, {"code": code})
        assert isinstance(outcome.failure, Crashed), outcome
        assert f"status {code}" in outcome.failure.reason
    aborted = harness.run_js("module.exports = async () => { process.abort(); };\n")
    assert isinstance(aborted.failure, Crashed), aborted
    really = harness.run_js("module.exports = async () => { process.reallyExit(5); };\n")
    assert isinstance(really.failure, Crashed), really


def test_a_worker_killed_mid_call(harness: Harness) -> None:
    """Killed from outside (the kernel's OOM killer, an operator): the call fails
    as a crash, at once, and the next call is served."""
    version = harness.js_version(
        "module.exports = async () => { await new Promise((r) => setTimeout(r, 30000)); };\n"
    )
    harness.runtime_ready = harness.invoke(  # a first call, to have a worker to kill
        harness.js_version("module.exports = async () => 1;\n")
    )
    killed: list[int] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = harness.runtime.worker_pids(version.key)
            if pids:
                time.sleep(0.3)  # its call has begun
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    began = time.monotonic()
    outcome = harness.invoke(version, timeout=15)
    killer.join()
    assert killed, "the worker never started"
    assert isinstance(outcome.failure, Crashed), outcome
    assert "SIGKILL" in outcome.failure.reason
    assert time.monotonic() - began < 10
