"""Where the server processes write their metrics, set before any of them starts.

Kept apart from metrics.py on purpose: prometheus-client decides at import
whether figures go to shared files, so the directory must be in the
environment before anything imports it.

The files are memory-mapped, and a write to a mapped page of a full file
system kills the process (SIGBUS): so they live in a fresh directory under the
system's temporary directory, never in the data dir, whose disk may fill up.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from authhooks.private_files import why_not_private

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "authhooks-metrics-"


def prepare_directory() -> Path:
    """A new, empty metrics directory (mode 0700) for the server processes about to
    start, this one included, told to them through the environment they inherit.
    Directories that servers no longer running left behind are removed first."""
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{_PREFIX}*"):
        match = re.match(rf"{_PREFIX}(\d+)-", stale.name)
        # Only a directory mkdtemp made for this user: anyone can name something so.
        if match and not Path(f"/proc/{match.group(1)}").exists() and _is_private(stale):
            shutil.rmtree(stale, ignore_errors=True)
    # mkdtemp makes a new directory (0700) under a random name, never an existing one.
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROCESS_ENV] = str(path)
    return path


def _is_private(path: Path) -> bool:
    try:
        return why_not_private(path) is None
    except OSError:  # gone meanwhile
        return False
