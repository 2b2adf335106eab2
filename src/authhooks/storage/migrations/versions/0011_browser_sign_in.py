"""Browser sign-in: clients' redirect URIs, origins, authentication method, party
and refresh-token settings; sign-in sessions, /authorize transactions,
authorization codes, refresh tokens and
third-party clients' consents.

Existing spa and native clients authenticate with ``none`` (they had no secret to
use); the others keep Auth0's default, ``client_secret_post``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _when() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    # Plain ADD COLUMN, written out: alembic copies a SQLite table to add a column
    # with a default, and dropping the old copy, with foreign keys on, deletes
    # every grant and session of every client by cascade.
    for name in ("callbacks", "allowed_logout_urls", "web_origins", "allowed_origins"):
        op.execute(f"ALTER TABLE clients ADD COLUMN {name} JSON NOT NULL DEFAULT '[]'")
    op.execute(
        "ALTER TABLE clients ADD COLUMN token_endpoint_auth_method VARCHAR(32) NOT NULL "
        "DEFAULT 'client_secret_post'"
    )
    op.execute("ALTER TABLE clients ADD COLUMN is_first_party BOOLEAN NOT NULL DEFAULT true")
    op.execute("ALTER TABLE clients ADD COLUMN refresh_token JSON NOT NULL DEFAULT '{}'")
    op.execute(
        "UPDATE clients SET token_endpoint_auth_method = 'none' WHERE app_type IN ('spa', 'native')"
    )

    op.create_table(
        "login_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("clients", sa.JSON(), nullable=False),
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=False),
        _when(),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])
    op.create_index("ix_login_sessions_expires_at", "login_sessions", ["expires_at"])

    op.create_table(
        "authorization_transactions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("awaiting", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=True),
        _when(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_authorization_transactions_expires_at", "authorization_transactions", ["expires_at"]
    )

    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("grant", sa.JSON(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        _when(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_family", sa.String(32), nullable=True),
    )
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(32), nullable=False),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("grant", sa.JSON(), nullable=False),
        _when(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])

    op.create_table(
        "consents",
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("refresh_tokens")
    op.drop_table("authorization_codes")
    op.drop_table("authorization_transactions")
    op.drop_table("login_sessions")
    for name in (
        "refresh_token",
        "is_first_party",
        "token_endpoint_auth_method",
        "allowed_origins",
        "web_origins",
        "allowed_logout_urls",
        "callbacks",
    ):
        op.execute(f"ALTER TABLE clients DROP COLUMN {name}")
