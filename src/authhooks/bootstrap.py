"""First-start initialisation: data dir, master key, schema, signing key, the
management API and its bootstrap admin client. Safe to run on every start,
and from several processes or hosts at once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.config import Settings
from authhooks.errors import StartupError
from authhooks.identity import clients
from authhooks.identity.management import (
    MANAGEMENT_API_NAME,
    MANAGEMENT_SCOPES,
    is_point_scope,
)
from authhooks.identity.tokens import ensure_signing_key
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.private_files import write_private
from authhooks.sealing import ensure_hash_key, secret_hasher
from authhooks.storage import models
from authhooks.storage.database import Database, bump_generation

ADMIN_FILE = "bootstrap-admin.json"


class ManagementAudienceTaken(StartupError):
    """Another API holds the management API's audience (registered while the issuer
    was elsewhere)."""

    def __init__(self, audience: str, holder: models.ResourceServer) -> None:
        super().__init__(
            f"the management API's audience {audience!r} (from the issuer) is the "
            f"identifier of the API {holder.name!r} (id {holder.id}): start with the "
            f"previous issuer and delete that API (DELETE /api/v2/resource-servers/"
            f"{holder.id}), or choose another issuer"
        )


@dataclass(frozen=True)
class AdminCredentials:
    client_id: str
    client_secret: str
    audience: str
    path: Path


def initialise(settings: Settings, *, new_admin: bool = False) -> AdminCredentials | None:
    """Bring the data dir and database up to date.

    Returns the credentials of an admin client created now: on first start, or
    when ``new_admin`` asks for one (to recover from a lost or deleted admin).
    """
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    master_key = MasterKey.load(settings.data_dir, settings.master_key)
    database = Database(settings.database_url)
    try:
        with database.exclusive("initialise"):
            database.migrate()
            with database.session() as session:
                ensure_signing_key(
                    session, master_key, settings.signing_algorithm, settings.token_lifetime
                )
                ensure_hash_key(session, master_key)
                # Opened on every start: a database restored with another master key
                # stops here, with a clear error, not at the first client to call.
                hasher = secret_hasher(session, master_key)
                first_start = _ensure_management_api(session, settings)
                created = None
                if first_start or new_admin:
                    created = _create_admin(session, settings, hasher)
    finally:
        database.dispose()
    if created is None:
        return None
    # Written only once the admin is committed, so the file never names a client that isn't.
    client_id, secret = created
    path = settings.data_dir / ADMIN_FILE
    document = {
        "client_id": client_id,
        "client_secret": secret,
        "audience": settings.management_audience,
        "issuer": settings.issuer,
    }
    write_private(path, json.dumps(document, indent=2) + "\n")
    return AdminCredentials(client_id, secret, settings.management_audience, path)


def _ensure_management_api(session: Session, settings: Settings) -> bool:
    """Create or refresh the system API; True when it was created (the first start)."""
    audience = settings.management_audience
    existing = session.scalar(
        select(models.ResourceServer).where(models.ResourceServer.is_system.is_(True))
    )
    holder = session.scalar(
        select(models.ResourceServer).where(
            models.ResourceServer.identifier == audience,
            models.ResourceServer.is_system.is_(False),
        )
    )
    if holder is not None:
        raise ManagementAudienceTaken(audience, holder)
    if existing is not None:
        # Later versions add scopes (and the issuer may have moved): keep the system
        # API current, with the scopes of the points declared through it.
        scopes = MANAGEMENT_SCOPES + [s for s in existing.scopes if is_point_scope(s["value"])]
        if existing.scopes != scopes or existing.identifier != audience:
            _widen_full_grants(session, existing.identifier, existing.scopes)
            existing.scopes = scopes
            existing.identifier = audience
            bump_generation(session)
        return False
    clients.create_resource_server(
        session,
        name=MANAGEMENT_API_NAME,
        identifier=audience,
        scopes=MANAGEMENT_SCOPES,
        token_lifetime=None,
        is_system=True,
    )
    return True


def _widen_full_grants(session: Session, audience: str, known: list[dict[str, str]]) -> None:
    """A grant that held every management scope (the bootstrap admin's, say) gets
    the scopes a new version adds: otherwise nobody could ever hold them, since a
    caller can only grant scopes it holds itself."""
    held_before = {scope["value"] for scope in known if not is_point_scope(scope["value"])}
    everything = [scope["value"] for scope in MANAGEMENT_SCOPES]
    grants = session.scalars(
        select(models.ClientGrant).where(models.ClientGrant.audience == audience)
    )
    for grant in grants:
        if held_before <= set(grant.scope):
            grant.scope = sorted(set(grant.scope) | set(everything))


def _create_admin(session: Session, settings: Settings, hasher: SecretHasher) -> tuple[str, str]:
    admin, secret = clients.create_client(
        session,
        hasher,
        name="Bootstrap admin",
        description="Created by authhooks init with every management scope.",
        app_type="non_interactive",
        grant_types=["client_credentials"],
        client_metadata={},
    )
    session.flush()
    clients.create_client_grant(
        session,
        client_id=admin.client_id,
        audience=settings.management_audience,
        scope=[scope["value"] for scope in MANAGEMENT_SCOPES],
    )
    return admin.client_id, secret
