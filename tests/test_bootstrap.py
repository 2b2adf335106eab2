"""First start, and later starts of a newer version over an existing database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from authhooks.api.scopes import MANAGEMENT_SCOPES
from authhooks.bootstrap import initialise
from authhooks.config import Settings
from authhooks.identity import clients
from authhooks.masterkey import MasterKey
from authhooks.sealing import secret_hasher
from authhooks.storage import models
from authhooks.storage.database import Database

NEW_IN_THIS_VERSION = {"read:admins", "create:admins", "update:admins", "delete:admins"}


def test_a_full_admin_grant_gains_the_scopes_a_new_version_adds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'a.db'}")
    admin = initialise(settings)
    assert admin is not None
    database = Database(settings.database_url)
    try:
        # As a server of the previous version left it: no *:admins scopes anywhere,
        # and a second, partial grant.
        with database.session() as session:
            api = session.scalars(
                select(models.ResourceServer).where(models.ResourceServer.is_system.is_(True))
            ).one()
            api.scopes = [s for s in MANAGEMENT_SCOPES if s["value"] not in NEW_IN_THIS_VERSION]
            for grant in session.scalars(select(models.ClientGrant)):
                grant.scope = [s for s in grant.scope if s not in NEW_IN_THIS_VERSION]
            reader, _ = clients.create_client(
                session,
                secret_hasher(session, MasterKey.load(settings.data_dir, settings.master_key)),
                name="reader",
                description="",
                app_type="non_interactive",
                grant_types=["client_credentials"],
                client_metadata={},
            )
            session.flush()
            clients.create_client_grant(
                session,
                client_id=reader.client_id,
                audience=settings.management_audience,
                scope=["read:hooks"],
            )
            reader_id = reader.client_id

        assert initialise(settings) is None  # a later start: no new admin

        with database.session() as session:
            scopes = {
                grant.client_id: set(grant.scope)
                for grant in session.scalars(select(models.ClientGrant))
            }
        assert scopes[admin.client_id] == {s["value"] for s in MANAGEMENT_SCOPES}
        assert scopes[reader_id] == {"read:hooks"}  # a partial grant stays as it was
    finally:
        database.dispose()
