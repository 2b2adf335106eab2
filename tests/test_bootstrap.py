"""First start, and later starts of a newer version over an existing database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from authhooks.bootstrap import ManagementAudienceTaken, initialise
from authhooks.config import Settings
from authhooks.errors import StartupError
from authhooks.identity import clients
from authhooks.identity.management import MANAGEMENT_SCOPES
from authhooks.masterkey import MasterKey
from authhooks.sealing import secret_hasher
from authhooks.storage import models
from authhooks.storage.database import Database

NEW_IN_THIS_VERSION = {
    "read:git_sources",
    "create:git_sources",
    "update:git_sources",
    "delete:git_sources",
    "read:points",
    "create:points",
    "update:points",
    "delete:points",
    "invoke:points",
}


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


def test_an_issuer_moved_onto_a_taken_audience_stops_start_up_with_one_clear_line(
    tmp_path: Path,
) -> None:
    data_dir, url = tmp_path / "data", f"sqlite:///{tmp_path / 'a.db'}"
    assert initialise(Settings(data_dir=data_dir, database_url=url)) is not None
    moved = "https://auth.example.com/"
    database = Database(url)
    try:
        # An API registered while the issuer was elsewhere, on the new issuer's audience.
        with database.session() as session:
            squatter = clients.create_resource_server(
                session,
                name="squatter",
                identifier=moved + "api/v2/",
                scopes=[],
                token_lifetime=None,
            )
            squatter_id = squatter.id
        env = {
            **os.environ,
            "AUTHHOOKS_DATA_DIR": str(data_dir),
            "AUTHHOOKS_DATABASE_URL": url,
            "AUTHHOOKS_ISSUER": moved,
        }
        env.pop("AUTHHOOKS_CONFIG", None)
        started = subprocess.run(
            [sys.executable, "-m", "authhooks", "init"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert started.returncode == 2, started.stderr
        assert "Traceback" not in started.stderr
        [line] = started.stderr.strip().splitlines()
        for named in (squatter_id, "'squatter'", moved + "api/v2/"):
            assert named in line
        with database.session() as session:
            system = session.scalars(
                select(models.ResourceServer).where(models.ResourceServer.is_system.is_(True))
            ).one()
            assert system.identifier != moved + "api/v2/"  # nothing changed
    finally:
        database.dispose()


def test_a_first_start_onto_a_taken_audience_names_the_api(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'a.db'}")
    database = Database(settings.database_url)
    try:
        database.migrate()
        with database.session() as session:
            clients.create_resource_server(
                session,
                name="early",
                identifier=settings.management_audience,
                scopes=[],
                token_lifetime=None,
            )
        with pytest.raises(ManagementAudienceTaken, match="'early'") as refused:
            initialise(settings)
        # An error of its own kind, which the CLI reports in one line: no LookupError
        # (a missing key, say) that code meant for lookups might catch instead.
        assert isinstance(refused.value, StartupError)
        assert not isinstance(refused.value, LookupError)
    finally:
        database.dispose()
