"""Files only the server's user may read (mode 0600), written whole or not at all,
and the check that a directory is closed to other users."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600.

    With ``exclusive`` the file is created only if absent (FileExistsError
    otherwise), so that two processes racing to create it never see it half
    written and never overwrite each other.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:  # mkstemp creates it with mode 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def why_not_private(path: Path) -> str | None:
    """Why ``path`` is not a directory of this process's user closed to other users
    (a symbolic link is not followed), or None if it is one."""
    found = os.lstat(path)
    euid = os.geteuid()
    if stat.S_ISLNK(found.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(found.st_mode):
        return "it is not a directory"
    if found.st_uid != euid:
        return f"it belongs to uid {found.st_uid}, not to this server's ({euid})"
    if found.st_mode & 0o077:
        return f"other users have access to it (mode {stat.S_IMODE(found.st_mode):o})"
    return None
