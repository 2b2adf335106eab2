"""Clients (applications), resource servers (APIs) and client grants.

Shapes follow Auth0's management API. Every change bumps the change counter
in the same transaction, so every server process drops its cached copy.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound, NotSupported
from authhooks.masterkey import SecretHasher
from authhooks.storage import models
from authhooks.storage.database import bump_generation, page
from authhooks.storage.models import utcnow

_ALPHANUMERIC = string.ascii_letters + string.digits
# Apps that run on the user's device cannot keep a secret (Auth0's "public" clients).
PUBLIC_APP_TYPES = frozenset({"spa", "native"})
# A public client authenticates with its client_id alone (RFC 7591 §2).
PUBLIC_AUTH_METHOD = "none"
# Apps people sign in to, by browser: what they may do unless told otherwise.
_BROWSER_GRANTS = ["authorization_code", "refresh_token"]


@dataclass(frozen=True)
class RefreshTokenSettings:
    """Auth0's ``refresh_token`` object of a client. Unlike Auth0's defaults (no
    rotation, no expiry), refresh tokens here rotate and expire unless a client
    says otherwise, as OAuth 2.1 asks; a public client's always rotate."""

    rotation_type: str = "rotating"  # or non-rotating
    expiration_type: str = "expiring"  # or non-expiring
    leeway: int = 0  # seconds a rotated token still works (a retry racing its answer)
    token_lifetime: int = 30 * 24 * 3600  # absolute, from the first token of the family
    idle_token_lifetime: int = 15 * 24 * 3600  # from the token's own issue
    infinite_token_lifetime: bool = False
    infinite_idle_token_lifetime: bool = False

    @classmethod
    def of(cls, stored: dict[str, Any]) -> RefreshTokenSettings:
        known = {key: value for key, value in stored.items() if key in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def rotates(self) -> bool:
        return self.rotation_type == "rotating"

    @property
    def absolute(self) -> int | None:
        """The family's lifetime in seconds; None: unbounded."""
        if self.expiration_type == "non-expiring" or self.infinite_token_lifetime:
            return None
        return self.token_lifetime

    @property
    def idle(self) -> int | None:
        if self.expiration_type == "non-expiring" or self.infinite_idle_token_lifetime:
            return None
        return self.idle_token_lifetime


def new_client_id() -> str:
    """32 random alphanumerics, like Auth0's client ids."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))


def new_client_secret() -> str:
    """256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(48)


# --- clients -----------------------------------------------------------------


def create_client(
    session: Session,
    hasher: SecretHasher,
    *,
    name: str,
    description: str,
    app_type: str,
    grant_types: Sequence[str] | None,
    client_metadata: dict[str, str],
    signup_enabled: bool | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[models.Client, str]:
    """Store a client; returns it with its secret, which is never readable again.
    ``settings``: the browser sign-in fields (callbacks, origins, ...)."""
    if grant_types is None:
        grant_types = default_grant_types(app_type)
    if signup_enabled is None:
        signup_enabled = app_type != "non_interactive"
    secret = new_client_secret()
    now = utcnow()
    client = models.Client(
        client_id=new_client_id(),
        name=name,
        description=description,
        app_type=app_type,
        secret_hash=hasher.hash(secret),
        grant_types=list(grant_types),
        client_metadata=dict(client_metadata),
        signup_enabled=signup_enabled,
        callbacks=[],
        allowed_logout_urls=[],
        web_origins=[],
        allowed_origins=[],
        token_endpoint_auth_method=default_auth_method(app_type),
        is_first_party=True,
        refresh_token=asdict(RefreshTokenSettings()),
        created_at=now,
        updated_at=now,
    )
    _apply_settings(client, settings or {})
    _check_client(client)
    session.add(client)
    bump_generation(session)
    return client, secret


def default_grant_types(app_type: str) -> list[str]:
    if app_type in PUBLIC_APP_TYPES:
        return list(_BROWSER_GRANTS)
    if app_type == "regular_web":
        return [*_BROWSER_GRANTS, "client_credentials"]
    return ["client_credentials"]


def default_auth_method(app_type: str) -> str:
    return PUBLIC_AUTH_METHOD if app_type in PUBLIC_APP_TYPES else "client_secret_post"


def get_client(session: Session, client_id: str) -> models.Client:
    client = session.get(models.Client, client_id)
    if client is None:
        raise NotFound(f"no client with id {client_id!r}")
    return client


def list_clients(
    session: Session,
    *,
    offset: int,
    limit: int,
    app_types: Sequence[str] | None = None,
    is_first_party: bool | None = None,
) -> tuple[list[models.Client], int]:
    """A page of clients, those of ``app_types`` and first party or not when given."""
    query = select(models.Client).order_by(models.Client.created_at, models.Client.client_id)
    if app_types is not None:
        query = query.where(models.Client.app_type.in_(app_types))
    if is_first_party is not None:
        query = query.where(models.Client.is_first_party.is_(is_first_party))
    return page(session, query, offset, limit)


def update_client(session: Session, client_id: str, changes: dict[str, Any]) -> models.Client:
    client = get_client(session, client_id)
    changes = dict(changes)
    # A client that becomes a spa can no longer keep a secret, and one that stops
    # being one gets a secret's method back.
    new_type = changes.get("app_type", client.app_type)
    if "token_endpoint_auth_method" not in changes and (new_type in PUBLIC_APP_TYPES) != (
        client.app_type in PUBLIC_APP_TYPES
    ):
        changes["token_endpoint_auth_method"] = default_auth_method(new_type)
    settings = {key: changes.pop(key) for key in list(changes) if key in _SETTINGS}
    before = {column.key: getattr(client, column.key) for column in models.Client.__table__.c}
    for field, value in changes.items():
        setattr(client, field, value)
    _apply_settings(client, settings)
    _check_client(client)
    if all(getattr(client, key) == value for key, value in before.items()):
        return client  # sent back as it is (a tool's round trip): no new updated_at
    client.updated_at = utcnow()
    bump_generation(session)
    return client


# The browser sign-in fields a client's create or update may carry.
_SETTINGS = frozenset(
    {
        "callbacks",
        "allowed_logout_urls",
        "web_origins",
        "allowed_origins",
        "token_endpoint_auth_method",
        "is_first_party",
        "refresh_token",
    }
)


def _apply_settings(client: models.Client, settings: dict[str, Any]) -> None:
    for field, value in settings.items():
        if field not in _SETTINGS:
            raise InvalidInput(f"{field} is not a client setting")
        if field == "refresh_token":
            # A partial object changes only what it names, as in Auth0.
            value = asdict(RefreshTokenSettings.of({**client.refresh_token, **value}))
        setattr(client, field, value)


def _check_client(client: models.Client) -> None:
    public = client.token_endpoint_auth_method == PUBLIC_AUTH_METHOD
    if client.app_type in PUBLIC_APP_TYPES and not public:
        raise InvalidInput(
            f"a {client.app_type} client cannot keep a secret: "
            "its token_endpoint_auth_method must be none"
        )
    if public and "client_credentials" in client.grant_types:
        raise InvalidInput(
            f"a {client.app_type} client cannot keep a secret, so it may not use client_credentials"
            if client.app_type in PUBLIC_APP_TYPES
            else "a client whose token_endpoint_auth_method is none has no secret, "
            "so it may not use client_credentials"
        )
    if public and not RefreshTokenSettings.of(client.refresh_token).rotates:
        raise InvalidInput(
            "a public client's refresh tokens must rotate (OAuth 2.1 §4.3.1): "
            "refresh_token.rotation_type must be rotating"
        )


def rotate_client_secret(
    session: Session, hasher: SecretHasher, client_id: str
) -> tuple[models.Client, str]:
    """Replace the secret: the old one stops working at once (within the cache bound)."""
    client = get_client(session, client_id)
    secret = new_client_secret()
    client.secret_hash = hasher.hash(secret)
    client.updated_at = utcnow()
    # Whoever signed in to the dashboard with the old secret is signed out.
    session.execute(
        delete(models.DashboardSession).where(models.DashboardSession.client_id == client_id)
    )
    bump_generation(session)
    return client, secret


def delete_client(session: Session, client_id: str) -> None:
    """Delete a client and, by cascade, its grants."""
    session.delete(get_client(session, client_id))
    bump_generation(session)


# --- resource servers --------------------------------------------------------


def create_resource_server(
    session: Session,
    *,
    name: str,
    identifier: str,
    scopes: list[dict[str, str]],
    token_lifetime: int | None,
    is_system: bool = False,
) -> models.ResourceServer:
    if session.scalar(
        select(models.ResourceServer.id).where(models.ResourceServer.identifier == identifier)
    ):
        raise Conflict(f"a resource server with identifier {identifier!r} already exists")
    now = utcnow()
    server = models.ResourceServer(
        id=secrets.token_hex(12),
        name=name,
        identifier=identifier,
        scopes=scopes,
        token_lifetime=token_lifetime,
        is_system=is_system,
        created_at=now,
        updated_at=now,
    )
    _insert(session, server, f"a resource server with identifier {identifier!r} already exists")
    return server


def check_not_reserved(identifier: str, issuer: str) -> None:
    """InvalidInput if ``identifier`` could become this server's management audience
    (``<issuer>api/v2/``) after its issuer moved on the same host — to another
    scheme, port or path: an API holding it would stop the server from starting.
    Every audience ends in "/api/v2/", since every issuer ends in "/"."""
    try:
        parts = urlsplit(identifier)
        host = parts.hostname
    except ValueError:  # not a URL (an unbalanced "[", say): no audience is like it
        return
    if (
        parts.scheme.lower() in ("http", "https")
        and host is not None
        and host == urlsplit(issuer).hostname
        and parts.path.endswith("/api/v2/")
    ):
        raise InvalidInput(
            f"identifier {identifier!r} is reserved for this server's management API: "
            f"on this server's host ({host}), an identifier's path may not end in /api/v2/"
        )


def get_resource_server(session: Session, id_or_identifier: str) -> models.ResourceServer:
    """By id, or by identifier as Auth0 also allows."""
    server = session.get(models.ResourceServer, id_or_identifier) or session.scalar(
        select(models.ResourceServer).where(models.ResourceServer.identifier == id_or_identifier)
    )
    if server is None:
        raise NotFound(f"no resource server with id or identifier {id_or_identifier!r}")
    return server


def list_resource_servers(
    session: Session, *, offset: int, limit: int, identifiers: Sequence[str] | None = None
) -> tuple[list[models.ResourceServer], int]:
    """A page of resource servers, those with one of ``identifiers`` when given."""
    query = select(models.ResourceServer).order_by(
        models.ResourceServer.created_at, models.ResourceServer.id
    )
    if identifiers is not None:
        query = query.where(models.ResourceServer.identifier.in_(identifiers))
    return page(session, query, offset, limit)


def update_resource_server(
    session: Session, id_or_identifier: str, changes: dict[str, Any]
) -> models.ResourceServer:
    server = get_resource_server(session, id_or_identifier)
    if all(getattr(server, field) == value for field, value in changes.items()):
        return server  # nothing changes (Auth0's tools send back what they read)
    _changeable(server)
    for field, value in changes.items():
        setattr(server, field, value)
    if "scopes" in changes:
        # A scope the API no longer defines leaves every grant, so that adding it
        # back later does not silently hand it out again.
        defined = set(scope_values(server))
        for grant in session.scalars(
            select(models.ClientGrant).where(models.ClientGrant.audience == server.identifier)
        ):
            kept = [value for value in grant.scope if value in defined]
            if kept != grant.scope:
                grant.scope = kept
                grant.updated_at = utcnow()
    server.updated_at = utcnow()
    bump_generation(session)
    return server


def delete_resource_server(session: Session, id_or_identifier: str) -> None:
    """Delete an API and, by cascade, every grant for it."""
    session.delete(_changeable(get_resource_server(session, id_or_identifier)))
    bump_generation(session)


def scope_values(server: models.ResourceServer) -> list[str]:
    return [scope["value"] for scope in server.scopes]


def _changeable(server: models.ResourceServer) -> models.ResourceServer:
    if server.is_system:
        raise NotSupported(
            f"{server.name!r} is a system resource server and cannot be changed or deleted"
        )
    return server


# --- client grants -----------------------------------------------------------


def create_client_grant(
    session: Session, *, client_id: str, audience: str, scope: list[str]
) -> models.ClientGrant:
    if session.get(models.Client, client_id) is None:
        raise NotFound(f"no client with id {client_id!r}")
    server = session.scalar(
        select(models.ResourceServer).where(models.ResourceServer.identifier == audience)
    )
    if server is None:
        raise NotFound(f"no resource server with identifier {audience!r}")
    _check_scopes(server, scope)
    exists = session.scalar(
        select(models.ClientGrant.id).where(
            models.ClientGrant.client_id == client_id, models.ClientGrant.audience == audience
        )
    )
    if exists:
        raise Conflict(f"client {client_id!r} already has a grant for {audience!r} ({exists})")
    now = utcnow()
    grant = models.ClientGrant(
        id="cgr_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16)),
        client_id=client_id,
        audience=audience,
        scope=scope,
        created_at=now,
        updated_at=now,
    )
    _insert(session, grant, f"client {client_id!r} already has a grant for {audience!r}")
    return grant


def granted_scopes(session: Session, client_id: str, audience: str) -> list[str]:
    """The scopes of the client's grant for ``audience``; [] without a grant."""
    scope = session.scalar(
        select(models.ClientGrant.scope).where(
            models.ClientGrant.client_id == client_id, models.ClientGrant.audience == audience
        )
    )
    return list(scope or [])


def get_client_grant(session: Session, grant_id: str) -> models.ClientGrant:
    grant = session.get(models.ClientGrant, grant_id)
    if grant is None:
        raise NotFound(f"no client grant with id {grant_id!r}")
    return grant


def list_client_grants(
    session: Session,
    *,
    offset: int,
    limit: int,
    client_id: str | None = None,
    audience: str | None = None,
) -> tuple[list[models.ClientGrant], int]:
    query = select(models.ClientGrant).order_by(
        models.ClientGrant.created_at, models.ClientGrant.id
    )
    if client_id is not None:
        query = query.where(models.ClientGrant.client_id == client_id)
    if audience is not None:
        query = query.where(models.ClientGrant.audience == audience)
    return page(session, query, offset, limit)


def client_grants_after(
    session: Session,
    *,
    after: str | None,
    limit: int,
    client_id: str | None = None,
    audience: str | None = None,
) -> list[models.ClientGrant]:
    """Auth0's checkpoint pagination: the grants after ``after`` in id order, so that
    pages stay whole while grants are added or removed between them."""
    query = select(models.ClientGrant).order_by(models.ClientGrant.id).limit(limit)
    if after is not None:
        query = query.where(models.ClientGrant.id > after)
    if client_id is not None:
        query = query.where(models.ClientGrant.client_id == client_id)
    if audience is not None:
        query = query.where(models.ClientGrant.audience == audience)
    return list(session.scalars(query))


def update_client_grant(session: Session, grant_id: str, scope: list[str]) -> models.ClientGrant:
    grant = get_client_grant(session, grant_id)
    if grant.scope == scope:
        return grant  # sent back as it is: no new updated_at
    _check_scopes(get_resource_server(session, grant.audience), scope)
    grant.scope = scope
    grant.updated_at = utcnow()
    bump_generation(session)
    return grant


def delete_client_grant(session: Session, grant_id: str) -> None:
    session.delete(get_client_grant(session, grant_id))
    bump_generation(session)


def _insert(session: Session, row: models.Base, conflict: str) -> None:
    """Add and flush now, so that a concurrent duplicate that passed the check is a Conflict."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None
    bump_generation(session)


def _check_scopes(server: models.ResourceServer, scope: list[str]) -> None:
    unknown = [value for value in scope if value not in scope_values(server)]
    if unknown:
        raise InvalidInput(
            f"scope {', '.join(unknown)} is not defined by resource server {server.identifier!r}"
        )
