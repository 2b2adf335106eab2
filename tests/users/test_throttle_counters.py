"""Throttle counters are forgotten once their window ended long ago."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from authhooks.users.throttle import MAX_WINDOW, address_key, count_attempt, prune_counters


def test_ended_counters_are_pruned_and_live_ones_kept(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'throttle.db'}")
    database.migrate()
    now = utcnow()
    with database.session() as session:
        count_attempt(session, "ip:203.0.113.1", now - timedelta(seconds=MAX_WINDOW + 60), 900)
        count_attempt(session, "ip:203.0.113.2", now - timedelta(seconds=MAX_WINDOW - 60), 900)
        assert count_attempt(session, "ip:203.0.113.2", now, MAX_WINDOW) == (
            2,
            now - timedelta(seconds=MAX_WINDOW - 60),
        )
        prune_counters(session, now)
    with database.session() as session:
        keys = set(session.scalars(select(models.LoginFailure.key)))
    database.dispose()
    assert keys == {"ip:203.0.113.2"}


def test_addresses_count_as_ipv4_or_an_ipv6_network() -> None:
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:ffff::1") == address_key("2001:db8:1:2::9")
    assert address_key("not-an-address") == "not-an-address"
