"""Where an SQLite database lives is private: every directory made for it is 0700,
a database named by a ``file:`` URI is found and created 0600 like any other,
and a lock file beside it is never opened through a planted link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from authhooks.storage.database import Database, sqlite_path
from tests.storage.test_file_modes import umask


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_directory_made_for_the_database_is_private(tmp_path: Path) -> None:
    with umask(0o022):
        database = Database(f"sqlite:///{tmp_path / 'a' / 'b' / 'c' / 'users.db'}")
    database.dispose()
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert mode(directory) == 0o700, directory
    assert mode(tmp_path / "a" / "b" / "c" / "users.db") == 0o600


def test_a_database_named_by_a_file_uri_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "by uri" / "users.db"
    url = f"sqlite:///file:{str(path).replace(' ', '%20')}?mode=rwc&uri=true"
    assert sqlite_path(url) == path
    with umask(0o022):
        database = Database(url)
    try:
        database.migrate()
        assert mode(path) == 0o600
        assert mode(path.parent) == 0o700
        with database.exclusive("init"):
            assert Path(f"{path}.init.lock").exists()
    finally:
        database.dispose()
    # No file to protect, and none made: in-memory databases, by URI too.
    for memory in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file::memory:?uri=true",
        "sqlite:///file:shared?mode=memory&cache=shared&uri=true",
    ):
        assert sqlite_path(memory) is None, memory
    # Without uri=true, SQLite takes the name as a file's.
    assert sqlite_path("sqlite:///file:users.db") == Path("file:users.db")


def test_a_lock_file_is_never_opened_through_a_link(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'users.db'}")
    target = tmp_path / "elsewhere"
    os.symlink(target, f"{tmp_path / 'users.db'}.init.lock")
    try:
        loop = "Too many levels of symbolic links"  # ELOOP
        with pytest.raises(OSError, match=loop), database.exclusive("init"):
            pass
    finally:
        database.dispose()
    assert not target.exists()
