"""The relational schema. Every change here comes with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Generation(Base):
    """A single counter bumped by every change that cached state depends on.

    Each server process polls it (at most every ``cache_ttl``) and drops its
    caches when it moves, so a change made through one process is honoured by
    all of them within that bound.
    """

    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LogSequence(Base):
    """The last ``seq`` handed to an invocation record; only ever grows (records
    are deleted, numbers are not reused). Its row lock orders the writers."""

    __tablename__ = "log_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), nullable=False)
    # AES-GCM ciphertext of the PKCS#8 DER private key, bound to the kid.
    private_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    # NULL while the key signs new tokens; set when a newer key replaces it.
    rotated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The key stays in the JWKS until every token it signed has expired.
    publish_until: Mapped[datetime | None] = mapped_column(nullable=True)


class Client(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    app_type: Mapped[str] = mapped_column(String(32), nullable=False)
    # HMAC-SHA256 of the secret under a key derived from the master key.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    grant_types: Mapped[list[Any]] = mapped_column(nullable=False)
    client_metadata: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    # Whether users may sign up through this client (POST /dbconnections/signup).
    signup_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Browser sign-in (Auth0's names): redirect URIs, matched exactly; where logout
    # may return to; origins allowed to call the token endpoint from a browser.
    callbacks: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    allowed_logout_urls: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    web_origins: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    allowed_origins: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    # none (a public client: spa, native), client_secret_post or client_secret_basic.
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), nullable=False, default="client_secret_post"
    )
    # A third-party client asks the person's consent before it gets their data.
    is_first_party: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Auth0's refresh_token object: rotation_type, expiration_type, lifetimes.
    refresh_token: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    # Auth0's fields that mean nothing here, kept as sent (docs/management-api.md).
    auth0_settings: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class ResourceServer(Base):
    __tablename__ = "resource_servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    identifier: Mapped[str] = mapped_column(String(600), nullable=False, unique=True)
    # [{"value": "read:things", "description": "..."}]
    scopes: Mapped[list[Any]] = mapped_column(nullable=False)
    token_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_system: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Auth0's fields that mean nothing here, kept as sent (docs/management-api.md).
    auth0_settings: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class ClientGrant(Base):
    __tablename__ = "client_grants"
    __table_args__ = (UniqueConstraint("client_id", "audience", name="uq_client_grant"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False
    )
    audience: Mapped[str] = mapped_column(
        String(600),
        ForeignKey("resource_servers.identifier", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
        index=True,
    )
    scope: Mapped[list[Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class Hook(Base):
    __tablename__ = "hooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    trigger_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    runtime: Mapped[str] = mapped_column(String(16), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    order: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    timeout_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    on_error: Mapped[str] = mapped_column(String(16), nullable=False)
    # The deployed version, and the last number handed out (versions are 1..n).
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    last_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # Keep each blocking invocation's event (encrypted, for a while) so it can be replayed.
    capture_events: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Hosts it may reach through the egress broker: "api.slack.com", "*.hubspot.com:8443".
    egress: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    # The git source that made it and keeps it (read-only elsewhere); NULL: made by hand.
    source_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class HookVersion(Base):
    __tablename__ = "hook_versions"

    hook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    script: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    author: Mapped[str] = mapped_column(String(64), nullable=False)
    # The language and packages this code was written for: a rollback brings them back.
    runtime: Mapped[str] = mapped_column(String(16), nullable=False, default="python")
    dependencies: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    resolved: Mapped[list[Any] | None] = mapped_column(nullable=True)
    installed: Mapped[str | None] = mapped_column(String(64), nullable=True)  # store key
    # Made by a git source's deployment: the source and the commit it deployed.
    source_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)


class HookSecret(Base):
    __tablename__ = "hook_secrets"

    hook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # AES-GCM under the master key, bound to the hook and the name.
    value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class HookInvocation(Base):
    __tablename__ = "hook_invocations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("hooks.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    point: Mapped[str] = mapped_column(String(64), nullable=False)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    duration_ms: Mapped[float] = mapped_column(Float, nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    console: Mapped[list[Any]] = mapped_column(nullable=False)
    # The order records were stored in, across every server process: what log
    # streams resume from (assigned by the writer under a lock, see hooks/invocations.py).
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    test: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The event as the hook's point received it, AES-GCM under the master key
    # (bound to the invocation id); never secrets or passwords. Dropped at expiry.
    captured_event: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    capture_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_hook_invocations_hook_started", "hook_id", "started_at"),
        UniqueConstraint("seq", name="uq_hook_invocations_seq"),
    )


class User(Base):
    """A user of the database connection. Email and username are stored lower-cased."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    username: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # argon2id, in its PHC string form (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    user_metadata: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    app_metadata: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    blocked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_password_reset: Mapped[datetime | None] = mapped_column(nullable=True)
    last_login: Mapped[datetime | None] = mapped_column(nullable=True)
    logins_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The profile (users/profile.py); unset fields show Auth0's defaults.
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    nickname: Mapped[str | None] = mapped_column(String(300), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(150), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(150), nullable=True)
    picture: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # Auth0's field, kept as set: no phone is verified here.
    phone_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class HookDelivery(Base):
    """One run of one hook of an asynchronous point, queued in the transaction that
    caused it and delivered at least once by whichever server process claims it."""

    __tablename__ = "hook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Shared by the deliveries of one event: what a hook de-duplicates by.
    event_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    hook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("hooks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    point: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    # pending, delivered, failed (attempts used up) or cancelled (hook disabled since).
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False)
    # Set while a process delivers it, and renewed; a process that dies lets it lapse.
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # The claiming process's token: its later writes hold only while the claim is its own.
    claim: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_hook_deliveries_due", "status", "next_attempt_at"),)


class LoginFailure(Base):
    """Throttle counters in a fixed window: failed password logins per (user, IP)
    and per IP, and public signups per address (``users/throttle.py``)."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(nullable=False)


class SealedKey(Base):
    """A key the server keeps in the database, sealed with the master key: so that
    rotating the master key re-seals it instead of changing it (``sealing.py``)."""

    __tablename__ = "sealed_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class Admin(Base):
    """A person who signs in to the dashboard with an email and a password, allowed
    the management scopes listed here. The email is stored lower-cased."""

    __tablename__ = "admins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    # argon2id, in its PHC string form (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    scopes: Mapped[list[Any]] = mapped_column(nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(nullable=True)


ONE_SIGNER = "(client_id IS NULL) <> (admin_id IS NULL)"


class DashboardSession(Base):
    """A signed-in dashboard admin (an admin client, or an admin user): the cookie
    holds the token, this row its hash. Exactly one of client_id and admin_id is set."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (CheckConstraint(ONE_SIGNER, name="ck_dashboard_sessions_one_signer"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    client_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=True
    )
    admin_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("admins.id", ondelete="CASCADE"), nullable=True, index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)


class LoginSession(Base):
    """A person signed in with a browser: the session cookie holds a token, this row
    its hash. Gives single sign-on across clients until it expires or is revoked."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: ``sid``
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The clients signed in to through this session, in order.
    clients: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    authenticated_at: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    ip: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    user_agent: Mapped[str] = mapped_column(String(512), nullable=False, default="")


class AuthorizationTransaction(Base):
    """An /authorize request waiting for the person to sign in (or consent), bound to
    the browser that made it by a cookie whose hash is kept here."""

    __tablename__ = "authorization_transactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False
    )
    request: Mapped[dict[str, Any]] = mapped_column(nullable=False)  # the checked parameters
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    # What it waits for: "login" (the sign-in or sign-up page), or "consent" by
    # the session named here.
    awaiting: Mapped[str] = mapped_column(String(16), nullable=False, default="login")
    session_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)


class AuthorizationCode(Base):
    """A code issued to a client's redirect URI: single use, short-lived. What the
    tokens it is exchanged for will carry is fixed when it is issued."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    grant: Mapped[dict[str, Any]] = mapped_column(nullable=False)  # identity.grant_state
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    # Set when exchanged; a second exchange revokes what the first issued.
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    refresh_family: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RefreshToken(Base):
    """One refresh token of a family (the tokens that rotated from one grant). The
    token itself is never stored, only its hash."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    grant: Mapped[dict[str, Any]] = mapped_column(nullable=False)  # identity.grant_state
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    # The family's absolute end, and this token's idle end (None: never).
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    idle_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set when it rotated (used once); presented again, the whole family is revoked.
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Consent(Base):
    """The scopes a person allowed a third-party client, asked once (until they change)."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scopes: Mapped[list[Any]] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class UserTicket(Base):
    """A link sent to (or made for) a user: a password reset or an email
    verification. Single use and short-lived; the ticket itself is never stored,
    only its SHA-256."""

    __tablename__ = "user_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # password_reset or email_verification.
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The address it was made for: a ticket made before an email change proves nothing.
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    # A password reset through it also marks the email verified (a mailed link proves it).
    verifies_email: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Where the person goes once it is used (a management API ticket's result_url).
    result_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OutgoingMail(Base):
    """A mail to send, queued in the transaction that made its ticket and sent at
    least once by whichever server process claims it (``identity/mail/outbox.py``).
    What it says (its link is a secret) is sealed with the master key, and erased
    once it is sent or given up."""

    __tablename__ = "mail_outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # password_reset or email_verification: which templates it is written with.
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    recipient: Mapped[str] = mapped_column(String(320), nullable=False)
    sealed_content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # pending, sent, or failed (attempts used up).
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False)
    # Set while a process sends it; a process that dies lets it lapse.
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # The claiming process's token: its later writes hold only while the claim is its own.
    claim: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)


class GitSource(Base):
    """A repository holding hooks in the export format, deployed on each push
    (gitsync/). Its webhook secret and credentials are sealed with the master key."""

    __tablename__ = "git_sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    repository: Mapped[str] = mapped_column(String(2048), nullable=False)
    branch: Mapped[str] = mapped_column(String(255), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False, default="")
    webhook_secret: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # "token" or "ssh_private_key", sealed; NULL: a public repository.
    credential_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # An ssh repository's host keys (known_hosts lines): the only ones a fetch trusts.
    ssh_known_hosts: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Seconds between polls of the branch head; NULL: webhooks only.
    poll_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    polled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class GitDeployment(Base):
    """One commit of a source deployed, or tried: queued by a webhook, a sync or a
    poll, claimed by one server process (a lease, as deliveries are), recorded."""

    __tablename__ = "git_deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("git_sources.id", ondelete="CASCADE"), nullable=False
    )
    # What a webhook named (None for a sync until the branch head is read).
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ref: Mapped[str] = mapped_column(String(300), nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)  # webhook, sync, poll
    # A webhook's delivery id and commit: a second delivery of either deploys nothing.
    delivery_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    dedupe_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    author: Mapped[str | None] = mapped_column(String(300), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # queued ... failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    changes: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        UniqueConstraint("source_id", "delivery_id", name="uq_git_deployments_delivery"),
        UniqueConstraint("source_id", "dedupe_commit", name="uq_git_deployments_commit"),
        Index("ix_git_deployments_source_created", "source_id", "created_at"),
        Index("ix_git_deployments_status", "status"),
    )


class DeclaredPoint(Base):
    """A point an application declared through the API (points/declared.py checks
    its spec; hooks/point_specs.py keeps it)."""

    __tablename__ = "declared_points"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class IdempotencyKey(Base):
    """An invocation's ``Idempotency-Key``, per caller and point: the request it
    came with (a hash) and, once answered, the answer a retry gets again."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    point: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # NULL while the first request with the key is being answered.
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)


class HookSchedule(Base):
    """When a hook of the ``schedule`` point runs: its cron expression in its time
    zone, the next tick, and the claim of the run in progress (one across every
    server process and node)."""

    __tablename__ = "hook_schedules"

    hook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True
    )
    cron: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    catch_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    next_run_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    running_since: Mapped[datetime | None] = mapped_column(nullable=True)
    claim: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
