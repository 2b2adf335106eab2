"""Where the server processes write their metrics, set before any of them starts.

Kept apart from metrics.py on purpose: prometheus-client decides at import
whether figures go to shared files, so the directory must be in the
environment before anything imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_directory(path: Path) -> None:
    """Make ``path`` the empty metrics directory of the server processes about to
    start (this one included), and tell them through the environment they inherit."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(path)
