"""A git server over ssh on loopback for the tests: OpenSSH's own sshd, started
unprivileged on a random port with its own host key.

sshd run by root wants its privilege-separation directory and user; run as
another user it needs none, but only that user may log in. So sshd runs in a
user namespace (bubblewrap, which the hook sandbox needs anyway) as uid 1000,
named ``git`` by a passwd file bound over /etc/passwd there: no system account,
no privilege, and the test's files (the repository) are that user's inside.
The client key given is the only one in authorized_keys; a login runs the
command git sends (git-upload-pack '/path') through /bin/sh.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    port: int
    host_public_key: str  # "ssh-ed25519 AAAA..."
    client_private_key: str

    def url(self, path: Path) -> str:
        return f"ssh://git@127.0.0.1:{self.port}{path}"

    @property
    def known_hosts(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_public_key}\n"


def keypair(where: Path) -> tuple[str, str]:
    """A new ed25519 key: (private key text, public key line)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(where)],
        check=True,
        capture_output=True,
    )
    return where.read_text(), where.with_suffix(".pub").read_text().strip()


@contextmanager
def ssh_git_server(root: Path) -> Iterator[SshServer]:
    root.mkdir(parents=True, exist_ok=True)
    _, host_public = keypair(root / "host_key")
    client_private, client_public = keypair(root / "client_key")
    (root / "authorized_keys").write_text(client_public + "\n")
    (root / "passwd").write_text(f"git:x:1000:1000:git:{root}:/bin/sh\n")
    (root / "group").write_text("git:x:1000:\n")
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile none\nUsePAM no\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nAllowTcpForwarding no\nX11Forwarding no\nPermitTTY no\n"
    )
    log = (root / "sshd.log").open("w")
    process = subprocess.Popen(
        [
            "bwrap",
            "--bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-user",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--die-with-parent",
            "--ro-bind",
            str(root / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(root / "group"),
            "/etc/group",
            SSHD,
            "-D",
            "-e",
            "-f",
            str(root / "sshd_config"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, process, root / "sshd.log")
        yield SshServer(port, host_public.rsplit(" ", 1)[0], client_private)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd not listening within 30 s:\n{log.read_text()}")
