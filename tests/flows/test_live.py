"""Live flows on a real database and a real sandbox: a lookup made after this
process changed the hooks sees the change, even while a reload the follower
began is still warming a version."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from authhooks.flows.live import LiveFlows
from authhooks.hooks import store
from authhooks.masterkey import MasterKey
from authhooks.points.registry import POINTS
from authhooks.runtime.supervisor import Runtime, RuntimeSettings
from authhooks.storage.database import Database
from tests.runtime.conftest import Loop

POINT = "credentials-exchange"
# Loading takes a second: a reload that warms it is in progress for that long.
FAST = "def credentials_exchange(client, scope, audience, context):\n    return None\n"
SLOW = "import time\ntime.sleep(1)\n\n" + FAST


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    found = Database(f"sqlite:///{tmp_path / 'live.db'}")
    found.migrate()
    yield found
    found.dispose()


def add_hook(database: Database, name: str, script: str) -> str:
    hook_id = store.new_hook_id()
    with database.session() as session:
        store.create_hook(
            session,
            hook_id=hook_id,
            author="test",
            code=store.Code(script),
            name=name,
            trigger_id=POINT,
            enabled=True,
            order=0,
            timeout_ms=5000,
            on_error="fail",
            capture_events=False,
            egress=[],
        )
    return hook_id


def test_a_lookup_after_a_change_waits_for_a_reload_begun_after_it(
    database: Database, tmp_path: Path
) -> None:
    loop = Loop()
    runtime = Runtime(RuntimeSettings())
    live = LiveFlows(database, MasterKey.load(tmp_path), runtime, POINTS, interval=0.05)

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        await runtime.start()
        await live.start()
        try:
            slow = add_hook(database, "slow", SLOW)
            live.invalidate()  # as the process that made the change does
            # The follower notices the counter within 0.05 s and starts a reload,
            # which spends a second warming the slow hook.
            await asyncio.sleep(0.3)
            seen = [hook.id for hook in await live.flow(POINT)]
            fast = add_hook(database, "fast", FAST)
            live.invalidate()
            after = [hook.id for hook in await live.flow(POINT)]
            return seen, after, [slow, fast]
        finally:
            await live.close()
            await runtime.close()

    try:
        seen, after, added = loop.run(scenario())
    finally:
        loop.stop()
    assert seen == added[:1]  # not the flows from before, which a reload had begun to replace
    assert after == added
