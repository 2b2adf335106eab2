"""Where the server processes write their metrics, set before any of them starts.

Kept apart from metrics.py on purpose: prometheus-client decides at import
whether figures go to shared files, so the directory must be in the
environment before anything imports it.

The files are memory-mapped, and a write to a mapped page of a full file
system kills the process (SIGBUS): so they live in a fresh directory under the
system's temporary directory, never in the data dir, whose disk may fill up.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_directory() -> str:
    """A new, empty metrics directory (mode 0700) for the server processes about to
    start, this one included, told to them through the environment they inherit;
    removed when this process exits."""
    path = tempfile.mkdtemp(prefix="authhooks-metrics-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ[MULTIPROCESS_ENV] = path
    return path
