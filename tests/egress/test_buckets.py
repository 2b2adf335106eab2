"""The broker forgets what it no longer needs: idle rate-limit buckets."""

from __future__ import annotations

import asyncio

from authhooks.egress.broker import Broker


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
