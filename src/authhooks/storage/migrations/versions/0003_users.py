"""Users, queued deliveries of asynchronous hooks, login failure counters, and
the per-client signup switch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("signup_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Existing apps people sign in to keep what new ones get: signups allowed.
    op.execute("UPDATE clients SET signup_enabled = true WHERE app_type <> 'non_interactive'")
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("username", sa.String(128), nullable=True, unique=True),
        sa.Column("phone_number", sa.String(32), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("user_metadata", sa.JSON(), nullable=False),
        sa.Column("app_metadata", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_password_reset", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.Column("logins_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column(
            "hook_id",
            sa.String(32),
            sa.ForeignKey("hooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("point", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_hook_deliveries_event_id", "hook_deliveries", ["event_id"])
    op.create_index("ix_hook_deliveries_hook_id", "hook_deliveries", ["hook_id"])
    op.create_index("ix_hook_deliveries_due", "hook_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("hook_deliveries")
    op.drop_table("users")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("signup_enabled")
