"""The broker cleans up after itself and after servers that died: door directories
of dead processes are removed, and idle rate-limit buckets are forgotten."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from authhooks.egress.broker import Broker, remove_stale_directories


def test_directories_of_dead_servers_are_removed() -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)
    base = Path(tempfile.gettempdir())
    stale = base / f"authhooks-egress-{dead_pid}-test"
    stale.mkdir()
    (stale / "0-abcd.sock").write_text("")
    alive = Path(tempfile.mkdtemp(prefix=f"authhooks-egress-{os.getpid()}-"))
    try:
        remove_stale_directories()
        assert not stale.exists()
        assert alive.exists()
    finally:
        alive.rmdir()


def test_idle_rate_buckets_are_forgotten() -> None:
    async def scenario() -> None:
        broker = Broker()
        try:
            for hook in ("hk_busy", "hk_idle"):
                assert broker._bucket(hook).take()
            refill = broker.limits.rate_burst / broker.limits.rate_per_second
            broker._buckets["hk_idle"].at -= refill + 1  # long idle: full again
            broker._swept_at -= 3600
            broker._bucket("hk_busy")
            assert set(broker._buckets) == {"hk_busy"}
            assert broker._buckets["hk_busy"].tokens < broker.limits.rate_burst  # kept as it was
        finally:
            await broker.shutdown()

    asyncio.run(scenario())
