"""The SQLite database holds users' personal data and password hashes: a server
started with the usual umask in a data dir other users can read still creates
the database, its -wal and its -shm 0600, and says at start which of the data
dir and the database other users can open."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import Server, run_server


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)  # the server process inherits it
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def output(server: Server, tmp_path: Path) -> str:
    return (tmp_path / f"server-{server.env['AUTHHOOKS_PORT']}.log").read_text()


def test_the_database_is_private_and_loose_modes_are_reported(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    database = data_dir / "authhooks.db"
    with umask(0o022):
        with run_server(tmp_path, "sqlite", data_dir=data_dir) as server:
            # The server holds the database open, in WAL mode: all three exist.
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                assert mode(path) == 0o600, path
            printed = output(server, tmp_path)
            assert f"warning: {data_dir} is open to other users (mode 0755)" in printed
            assert f"{database} is open" not in printed

        # A database made readable by others (copied in, or from an older version)
        # is reported too; a private data dir is not.
        data_dir.chmod(0o700)
        database.chmod(0o644)
        with run_server(tmp_path, "sqlite", data_dir=data_dir) as server:
            printed = output(server, tmp_path)
            assert f"warning: {database} is open to other users (mode 0644)" in printed
            assert f"{data_dir} is open" not in printed
