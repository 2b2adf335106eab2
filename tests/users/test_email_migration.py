"""Migration 0009 over a database an earlier version left: emails take their new
normal form where they can, and throttle counters that hold typed logins go."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, Boolean, Integer, column, insert, select, table

from authhooks.storage import models
from authhooks.storage.database import MIGRATIONS, Database
from authhooks.storage.models import utcnow
from tests.conftest import postgres_schema


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    if backend == "postgresql":
        with postgres_schema() as url:
            database = Database(url)
            yield database
            database.dispose()
    else:
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield database
        database.dispose()


def migrate_to(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def wide(text: str) -> str:
    """Fullwidth letters, which NFKC makes ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


# The users table as it was at 0008 (the model has columns added since).
USERS_0008 = table(
    "users",
    column("id"),
    column("email"),
    column("password_hash"),
    column("email_verified", Boolean),
    column("blocked", Boolean),
    column("logins_count", Integer),
    column("user_metadata", JSON),
    column("app_metadata", JSON),
    column("created_at", models.UTCDateTime()),
    column("updated_at", models.UTCDateTime()),
)


def user(user_id: str, email: str, age: int) -> dict[str, Any]:
    now = utcnow() - timedelta(minutes=age)
    return {
        "id": user_id,
        "email": email,
        "password_hash": "x",
        "email_verified": False,
        "blocked": False,
        "logins_count": 0,
        "user_metadata": {},
        "app_metadata": {},
        "created_at": now,
        "updated_at": now,
    }


def test_emails_are_normalised_and_typed_logins_dropped(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    migrate_to(database, "0008")
    now = utcnow()
    with database.session() as session:
        session.execute(
            insert(USERS_0008),
            [
                # As the previous version stored them: the domain in Unicode, NFC only.
                user("auth0|idn", "ada@bücher.example", 5),
                user("auth0|wide", wide("bob") + "@example.com", 4),
                # A look-alike of an account that already has the normal form: left as
                # it is, for an operator to settle.
                user("auth0|plain", "eve@example.com", 3),
                user("auth0|twin", wide("eve") + "@example.com", 2),
                # Two look-alikes, neither normal: the older one gets the normal form.
                user("auth0|first", wide("mal") + "@example.com", 2),
                user("auth0|second", wide("ma") + "l@example.com", 1),
            ],
        )
        session.add(
            models.Admin(
                id="adm_1",
                email="root@bücher.example",
                password_hash="x",
                scopes=[],
                created_by="test",
            )
        )
        for key in (
            "login:typed-secret@example.com|203.0.113.1",
            "admin-login:someone@example.com|203.0.113.1",
            "user:auth0|idn|203.0.113.1",
            "ip:203.0.113.1",
            "signup-ip:203.0.113.1",
        ):
            session.add(models.LoginFailure(key=key, count=1, window_started_at=now))

    with caplog.at_level(logging.WARNING):
        database.migrate()

    with database.session() as session:
        emails = dict(session.execute(select(models.User.id, models.User.email)).all())
        admins = list(session.scalars(select(models.Admin.email)))
        keys = set(session.scalars(select(models.LoginFailure.key)))
    assert emails == {
        "auth0|idn": "ada@xn--bcher-kva.example",
        "auth0|wide": "bob@example.com",
        "auth0|plain": "eve@example.com",
        "auth0|twin": wide("eve") + "@example.com",
        "auth0|first": "mal@example.com",
        "auth0|second": wide("ma") + "l@example.com",
    }
    assert admins == ["root@xn--bcher-kva.example"]
    assert keys == {"user:auth0|idn|203.0.113.1", "ip:203.0.113.1", "signup-ip:203.0.113.1"}
    warned = caplog.text
    assert "auth0|twin" in warned
    assert "auth0|second" in warned
    assert "auth0|idn" not in warned
