"""First-start initialisation: data dir, master key, schema, signing key, the
management API and its bootstrap admin client. Safe to run on every start."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.api.scopes import MANAGEMENT_API_NAME, MANAGEMENT_SCOPES
from authhooks.config import Settings
from authhooks.identity import clients
from authhooks.identity.tokens import ensure_signing_key
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.storage import models
from authhooks.storage.database import Database, bump_generation

ADMIN_FILE = "bootstrap-admin.json"


@dataclass(frozen=True)
class AdminCredentials:
    client_id: str
    client_secret: str
    audience: str
    path: Path


def initialise(settings: Settings) -> AdminCredentials | None:
    """Bring the data dir and database up to date; returns new admin credentials on first start."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    master_key = MasterKey.load(settings.data_dir, settings.master_key)
    database = Database(settings.database_url)
    try:
        database.migrate()
        with database.session() as session:
            ensure_signing_key(
                session, master_key, settings.signing_algorithm, settings.token_lifetime
            )
            return _ensure_management_api(session, settings, SecretHasher(master_key))
    finally:
        database.dispose()


def _ensure_management_api(
    session: Session, settings: Settings, hasher: SecretHasher
) -> AdminCredentials | None:
    audience = settings.management_audience
    existing = session.scalar(
        select(models.ResourceServer).where(models.ResourceServer.is_system.is_(True))
    )
    if existing is not None:
        # Later versions add scopes (and the issuer may have moved): keep the system API current.
        if existing.scopes != MANAGEMENT_SCOPES or existing.identifier != audience:
            existing.scopes = MANAGEMENT_SCOPES
            existing.identifier = audience
            bump_generation(session)
        return None
    clients.create_resource_server(
        session,
        name=MANAGEMENT_API_NAME,
        identifier=audience,
        scopes=MANAGEMENT_SCOPES,
        token_lifetime=None,
        is_system=True,
    )
    admin, secret = clients.create_client(
        session,
        hasher,
        name="Bootstrap admin",
        description="Created on first start with every management scope.",
        app_type="non_interactive",
        grant_types=["client_credentials"],
        client_metadata={},
    )
    session.flush()
    clients.create_client_grant(
        session,
        client_id=admin.client_id,
        audience=audience,
        scope=[scope["value"] for scope in MANAGEMENT_SCOPES],
    )
    path = settings.data_dir / ADMIN_FILE
    credentials = {"client_id": admin.client_id, "client_secret": secret, "audience": audience}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({**credentials, "issuer": settings.issuer}, file, indent=2)
    return AdminCredentials(admin.client_id, secret, audience, path)
