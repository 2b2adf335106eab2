"""The lock files that give each server process its sandbox uids (and its CPU) live
in the system's temporary directory, where any local user could have made their
directory first, full of links: such a directory is refused, and no link is
followed, so that root never creates a file where the links point."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from authhooks.observability.processes import MULTIPROCESS_ENV, prepare_directory
from authhooks.runtime.sandbox import Limits, Sandbox, SandboxSettings, SandboxUnavailable
from authhooks.runtime.supervisor import claim_cpu

NOBODY = 65534


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system temporary directory of the test's own, sticky and open to all like /tmp."""
    root = tmp_path / "tmp"
    root.mkdir()
    root.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def plant(directory: Path, target: Path, *, owner: int | None, mode: int) -> None:
    """What a local user could leave: ``directory``, with every lock it might be asked
    for linked to ``target``."""
    directory.mkdir()
    for n in range(4):
        (directory / f"{n}.lock").symlink_to(target)
    directory.chmod(mode)
    if owner is not None:
        os.chown(directory, owner, owner, follow_symlinks=False)


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
PLANTS = [
    pytest.param(NOBODY, 0o700, "belongs to uid", marks=root_only, id="someone-elses"),
    pytest.param(None, 0o777, "other users have access", id="open-to-all"),
]


@pytest.fixture
def start_sandbox(tmp: Path) -> Callable[[], Sandbox]:
    """Starts a sandbox, which claims a range of uids for its workers; skips where
    workers do not get uids of their own (a server not running as root)."""
    probe = Sandbox(SandboxSettings(), Limits())
    probe.close()
    if not probe.separate_uids:
        pytest.skip("workers run on the server's uid here: no uid range is claimed")
    shutil.rmtree(tmp / "authhooks-sandbox-uids", ignore_errors=True)
    return lambda: Sandbox(SandboxSettings(), Limits())


@pytest.mark.parametrize(("owner", "mode", "says"), PLANTS)
def test_a_planted_uid_lock_directory_is_refused(
    tmp: Path, start_sandbox: Callable[[], Sandbox], owner: int | None, mode: int, says: str
) -> None:
    target = tmp / "nologin"
    plant(tmp / "authhooks-sandbox-uids", target, owner=owner, mode=mode)
    with pytest.raises(SandboxUnavailable, match=says):
        start_sandbox()
    assert not target.exists()


@pytest.mark.parametrize(("owner", "mode", "says"), PLANTS)
def test_a_planted_cpu_lock_directory_is_refused(
    tmp: Path, owner: int | None, mode: int, says: str
) -> None:
    target = tmp / "nologin"
    plant(tmp / f"authhooks-cpus-{os.geteuid()}", target, owner=owner, mode=mode)
    with pytest.raises(PermissionError, match=says):
        claim_cpu()
    assert not target.exists()


def test_a_lock_directory_that_is_a_link_is_refused(tmp: Path) -> None:
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp / f"authhooks-cpus-{os.geteuid()}").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="symbolic link"):
        claim_cpu()
    assert list(elsewhere.iterdir()) == []


def test_a_lock_file_is_never_followed(tmp: Path, start_sandbox: Callable[[], Sandbox]) -> None:
    target = tmp / "nologin"
    directory = tmp / "authhooks-sandbox-uids"
    directory.mkdir(mode=0o700)
    (directory / "0.lock").symlink_to(target)
    with pytest.raises(SandboxUnavailable, match="symbolic links"):
        start_sandbox()
    assert not target.exists()


def test_the_lock_directories_are_made_private(
    tmp: Path, start_sandbox: Callable[[], Sandbox]
) -> None:
    sandbox = start_sandbox()
    claim_cpu()
    for name in ("authhooks-sandbox-uids", f"authhooks-cpus-{os.geteuid()}"):
        found = (tmp / name).lstat()
        assert (found.st_uid, found.st_mode & 0o777) == (os.geteuid(), 0o700)
    sandbox.close()


def test_only_metrics_directories_of_ours_are_cleared(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Directories a dead server left behind are removed, never what merely bears
    their name: another user's, or a link to a directory of ours."""
    dead = 2**22 + 1  # above any pid the kernel hands out by default
    ours = tmp / f"authhooks-metrics-{dead}-ours"
    ours.mkdir(mode=0o700)
    keep = tmp / "keep"
    keep.mkdir(mode=0o700)
    (keep / "file").write_text("kept")
    (tmp / f"authhooks-metrics-{dead}-link").symlink_to(keep)
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)  # restored after the test
    fresh = prepare_directory()
    assert not ours.exists()
    assert (keep / "file").read_text() == "kept"
    assert fresh.is_dir()
