"""Hooks, their versions, secrets and invocation records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("on_error", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_hooks_trigger_id", "hooks", ["trigger_id"])
    op.create_table(
        "hook_versions",
        sa.Column(
            "hook_id",
            sa.String(32),
            sa.ForeignKey("hooks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
    )
    op.create_table(
        "hook_secrets",
        sa.Column(
            "hook_id",
            sa.String(32),
            sa.ForeignKey("hooks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "hook_invocations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "hook_id",
            sa.String(32),
            sa.ForeignKey("hooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("point", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("console", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_hook_invocations_hook_started", "hook_invocations", ["hook_id", "started_at"]
    )


def downgrade() -> None:
    op.drop_table("hook_invocations")
    op.drop_table("hook_secrets")
    op.drop_table("hook_versions")
    op.drop_table("hooks")
