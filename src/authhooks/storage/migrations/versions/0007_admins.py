"""Admin users: people who sign in to the dashboard with an email and a password.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.alter_column("client_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("admin_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_dashboard_sessions_admin_id", "admins", ["admin_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_dashboard_sessions_admin_id", ["admin_id"])
        batch.create_check_constraint(
            "ck_dashboard_sessions_one_signer", "(client_id IS NULL) <> (admin_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM dashboard_sessions WHERE client_id IS NULL")
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.drop_constraint("ck_dashboard_sessions_one_signer", type_="check")
        batch.drop_index("ix_dashboard_sessions_admin_id")
        batch.drop_constraint("fk_dashboard_sessions_admin_id", type_="foreignkey")
        batch.drop_column("admin_id")
        batch.alter_column("client_id", existing_type=sa.String(64), nullable=False)
    op.drop_table("admins")
