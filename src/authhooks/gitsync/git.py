"""A commit fetched with the git CLI and its tree read, under caps.

git runs with an argv list (never a shell), no system or global
configuration, no prompts, only the transports a source may use, a timeout
and a cap on the bytes it brings in. Credentials never reach argv, the
repository URL or an error: a token is handed to git's askpass program
through that one child's environment, an SSH key through a file only the
server's user can read, in a directory removed after the fetch. Over ssh the
host's key must be one of the source's ``ssh_known_hosts`` lines, written to
that directory and the only known_hosts file ssh reads
(StrictHostKeyChecking=yes): an unknown or changed key fails the fetch with
ssh's reason. Nothing is
checked out: files are read from git's objects, so no filter, hook or
symlink of the repository's is ever followed on the server's disk.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from authhooks.gitsync.repository import is_ssh
from authhooks.gitsync.sources import Credentials

MAX_FILE_BYTES = 1024 * 1024  # any file of hooks/ past this fails the deployment
MAX_FILES = 1000
ANCESTRY_DEPTH = 50  # commits looked back through to tell whether a push is older
_ASKPASS = """#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "$AUTHHOOKS_GIT_USERNAME" ;;
  *) printf '%s\\n' "$AUTHHOOKS_GIT_PASSWORD" ;;
esac
"""


# Lines of ssh's and git's that repeat advice rather than say what failed; the rest
# (a changed or unknown host key, the fingerprint the host sent) is kept.
_NOISE = (
    "IT IS POSSIBLE THAT",
    "Someone could be eavesdropping",
    "It is also possible that",
    "Please contact your system administrator",
    "Add correct host key in",
    "Offending ",
    "remove with:",
    "ssh-keygen -f",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
)


class GitError(Exception):
    """Why a fetch or a read failed, in words fit to record (no credentials)."""


@dataclass(frozen=True)
class GitSettings:
    timeout: float = 120.0
    max_bytes: int = 200 * 1024 * 1024
    allow_local: bool = False


@dataclass(frozen=True)
class Entry:
    mode: str
    sha: str
    size: int


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    message: str


class Repository:
    """A bare repository in ``workdir`` that fetches from ``url``."""

    def __init__(
        self,
        workdir: Path,
        url: str,
        credentials: Credentials | None,
        settings: GitSettings,
        known_hosts: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.url = url
        self.settings = settings
        self._secret = credentials.value if credentials is not None else None
        self.git_dir = workdir / "repo.git"
        home = workdir / "home"
        home.mkdir(mode=0o700)
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PROTOCOL_FROM_USER": "0",
        }
        # No agent, and no key but the source's: ssh finds the server account's own
        # keys through its passwd entry, whatever HOME says.
        ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        ssh += ["-o", "IdentityAgent=none"]
        if is_ssh(url):
            if not known_hosts:
                raise GitError("an ssh repository needs its host keys: set ssh_known_hosts")
            pinned = home / "known_hosts"
            descriptor = os.open(pinned, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "w") as file:
                file.write(known_hosts)
            ssh += ["-o", f"UserKnownHostsFile={pinned}", "-o", "GlobalKnownHostsFile=/dev/null"]
        else:
            ssh += ["-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null"]
        ssh += ["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"]
        if credentials is not None and credentials.kind == "ssh_private_key":
            if not is_ssh(url):
                raise GitError("an SSH key is for an ssh:// or git@host:path repository")
            key = home / "id"
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "w") as file:
                file.write(credentials.value)
            ssh += ["-i", str(key)]
        else:
            ssh += ["-o", "PubkeyAuthentication=no"]
        if credentials is not None and credentials.kind != "ssh_private_key":
            if is_ssh(url):
                raise GitError("a token is for an https:// repository; give an SSH key for ssh")
            askpass = home / "askpass"
            descriptor = os.open(askpass, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
            with open(descriptor, "w") as file:
                file.write(_ASKPASS)
            self._env["GIT_ASKPASS"] = str(askpass)
            self._env["AUTHHOOKS_GIT_USERNAME"] = urlsplit(url).username or "x-access-token"
            self._env["AUTHHOOKS_GIT_PASSWORD"] = credentials.value
        self._env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        self._env["GIT_SSH_VARIANT"] = "ssh"
        protocols = ["-c", "protocol.allow=never"]
        local = ("file", "http") if settings.allow_local else ()  # checked by repository.py
        for protocol in ("https", "ssh", *local):
            protocols += ["-c", f"protocol.{protocol}.allow=always"]
        self._config = [
            *protocols,
            "-c",
            "credential.helper=",
            "-c",
            "core.fsmonitor=false",
            # A redirect would take the fetch (and a token) to a host never checked.
            "-c",
            "http.followRedirects=false",
        ]
        self._git(["init", "--bare", "-q", str(self.git_dir)], in_repo=False)

    def fetch(self, what: str) -> str:
        """Fetch ``what`` (a commit or refs/heads/BRANCH) at depth 1; the commit's sha."""
        self._text(
            ["fetch", "--no-tags", "--no-recurse-submodules", "--depth=1", "--", self.url, what],
            capped=True,
        )
        sha = self._text(["rev-parse", "--verify", "--end-of-options", "FETCH_HEAD^{commit}"])
        return sha.strip()

    def is_ancestor(self, sha: str, later: str) -> bool:
        """Whether commit ``sha`` (fetched) comes before ``later`` on its history. Asks
        for ``later`` and its last ANCESTRY_DEPTH commits, without their trees (where
        the host filters); False when git cannot tell (``later`` gone, say)."""
        try:
            self._git(
                [
                    "fetch",
                    "--no-tags",
                    "--no-recurse-submodules",
                    f"--depth={ANCESTRY_DEPTH}",
                    "--filter=tree:0",
                    "--",
                    self.url,
                    later,
                ],
                capped=True,
            )
            self._git(["merge-base", "--is-ancestor", sha, later])
        except GitError:
            return False
        return True

    def head(self, ref: str) -> str | None:
        """The commit ``ref`` names on the remote now; None when it names none."""
        listing = self._text(["ls-remote", "--", self.url, ref], capped=True)
        for line in listing.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        return None

    def commit(self, sha: str) -> Commit:
        shown = self._text(["log", "-1", "--format=%an <%ae>%x00%B", sha])
        author, _, message = shown.partition("\x00")
        return Commit(sha, author.strip()[:300], message.strip()[:10_000])

    def folder(self, sha: str, path: str) -> dict[str, Entry]:
        """The entries of the folder ``path`` of the commit (its own files, not
        deeper), by name; GitError when it is not a folder there."""
        path = path.strip("/")
        listing = self._text(["ls-tree", "-l", "-z", sha, "--", (path + "/") if path else "."])
        entries: dict[str, Entry] = {}
        kinds: dict[str, str] = {}
        for line in filter(None, listing.split("\x00")):
            meta, _, name = line.partition("\t")
            mode, kind, object_sha, size = meta.split()
            base = posixpath.basename(name)
            kinds[base] = kind
            if kind == "blob":
                entries[base] = Entry(mode, object_sha, int(size))
        if not kinds and path:
            raise GitError(f"{path}/ is not a folder in commit {sha[:12]}")
        if len(entries) > MAX_FILES:
            raise GitError(f"{path or '.'}/ has more than {MAX_FILES} files")
        return entries

    def is_folder(self, sha: str, path: str) -> bool:
        listing = self._text(["ls-tree", "-z", sha, "--", path.strip("/")])
        return any(line.split()[1] == "tree" for line in filter(None, listing.split("\x00")))

    def read(self, sha: str, path: str, entry: Entry, depth: int = 0) -> bytes:
        """A file's bytes; a symlink is followed when it points inside the repository."""
        if entry.size > MAX_FILE_BYTES:
            raise GitError(f"{path}: {entry.size} bytes, more than {MAX_FILE_BYTES} allowed")
        if entry.mode == "120000":
            target = self._blob(entry.sha).decode(errors="replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise GitError(f"{path}: a symlink pointing outside the repository ({target})")
            if depth > 0:
                raise GitError(f"{path}: a symlink to a symlink; link to the file itself")
            folder, name = posixpath.split(resolved)
            found = self.folder(sha, folder).get(name)
            if found is None:
                raise GitError(f"{path}: a symlink to {resolved}, which is not a file")
            return self.read(sha, resolved, found, depth + 1)
        if not stat.S_ISREG(int(entry.mode, 8)):
            raise GitError(f"{path}: not a regular file")
        return self._blob(entry.sha)

    def _blob(self, sha: str) -> bytes:
        return self._git(["cat-file", "blob", sha])

    def _text(self, args: list[str], **options: bool) -> str:
        return self._git(args, **options).decode(errors="replace")

    def _git(self, args: list[str], *, in_repo: bool = True, capped: bool = False) -> bytes:
        argv = ["git", *self._config]
        if in_repo:
            argv += ["--git-dir", str(self.git_dir)]
        argv += args
        out_path, err_path = self.workdir / "out", self.workdir / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            process = subprocess.Popen(
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                start_new_session=True,
            )
            deadline = time.monotonic() + self.settings.timeout
            too_big = False
            while process.poll() is None:
                if time.monotonic() > deadline or (
                    capped and _size(self.git_dir) > self.settings.max_bytes
                ):
                    too_big = time.monotonic() <= deadline
                    _kill(process)
                    if too_big:
                        raise GitError(
                            f"git {args[0]}: stopped: the repository is larger than "
                            f"{self.settings.max_bytes} bytes"
                        )
                    raise GitError(f"git {args[0]}: stopped after {self.settings.timeout:g} s")
                time.sleep(0.05)
        output = out_path.read_bytes()
        if process.returncode != 0:
            raise GitError(f"git {args[0]}: {self._scrub(err_path.read_bytes())}")
        return output

    def _scrub(self, stderr: bytes) -> str:
        """git's reason, its last lines, without the credentials or the workdir."""
        text = stderr.decode(errors="replace")
        if self._secret:
            text = text.replace(self._secret, "***")
        text = text.replace(str(self.workdir), "…")
        lines = [
            line.strip().strip("@").strip()
            for line in text.splitlines()
            if line.strip().strip("@").strip() and not line.strip().startswith(_NOISE)
        ]
        return " / ".join(lines[-6:]).replace("is / SHA256:", "is SHA256:")[:1000] or "failed"


def _size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    process.wait()
