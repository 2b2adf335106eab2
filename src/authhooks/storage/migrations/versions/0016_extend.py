"""Points that applications declare through the API, the answers kept for their
invocations' idempotency keys, and the schedules of scheduled hooks.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "declared_points",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("point", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        _when("created_at"),
        _when("expires_at"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "hook_schedules",
        sa.Column(
            "hook_id",
            sa.String(32),
            sa.ForeignKey("hooks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("catch_up", sa.Boolean(), nullable=False),
        _when("next_run_at"),
        _when("running_since", nullable=True),
        sa.Column("claim", sa.String(32), nullable=True),
        _when("last_run_at", nullable=True),
        sa.Column("last_status", sa.String(32), nullable=True),
        _when("updated_at"),
    )
    op.create_index("ix_hook_schedules_next_run_at", "hook_schedules", ["next_run_at"])


def downgrade() -> None:
    op.drop_index("ix_hook_schedules_next_run_at", "hook_schedules")
    op.drop_table("hook_schedules")
    op.drop_index("ix_idempotency_keys_expires_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("declared_points")
