"""The broker cleans up after itself and after servers that died: door directories
of dead processes are removed, and idle rate-limit buckets are forgotten."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from authhooks.egress.broker import Broker, remove_stale_directories


def _old(path: Path) -> Path:
    """As if made two minutes ago: a starting broker's directory is never touched."""
    stamp = time.time() - 120
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def _abandoned(name: str) -> Path:
    path = Path(tempfile.gettempdir()) / name
    path.mkdir()
    (path / ".lock").write_text("")
    (path / "0-abcd.sock").write_text("")
    return _old(path)


def test_directories_of_dead_servers_are_removed_and_nothing_else() -> None:
    async def scenario() -> None:
        live = Broker()
        _old(live._directory)
        dead = _abandoned("authhooks-egress-dead-test")
        fresh = Path(tempfile.mkdtemp(prefix="authhooks-egress-"))  # just made: left alone
        (fresh / ".lock").write_text("")
        foreign = _abandoned("authhooks-egress-foreign-test")
        os.chown(foreign, 12345, 12345)  # another user's
        target = Path(tempfile.mkdtemp(prefix="test-target-"))
        (target / ".lock").write_text("")
        link = Path(tempfile.gettempdir()) / "authhooks-egress-link-test"
        link.symlink_to(target)
        _old(link)
        try:
            remove_stale_directories()
            assert not dead.exists()
            assert live._directory.exists()  # its broker holds the lock
            assert fresh.exists()
            assert foreign.exists()
            assert link.is_symlink()
            assert (target / ".lock").exists()
        finally:
            await live.shutdown()
            for path in (fresh, foreign, target):
                shutil.rmtree(path, ignore_errors=True)
            link.unlink()
        assert not live._directory.exists()

    asyncio.run(scenario())


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
