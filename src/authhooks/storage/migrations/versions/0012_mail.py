"""Mail: single-use tickets (password reset, email verification), stored as their
SHA-256, and the outbox of mails waiting to be sent.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _user() -> sa.Column[object]:
    return sa.Column(
        "user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "user_tickets",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        _user(),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("verifies_email", sa.Boolean(), nullable=False),
        sa.Column("result_url", sa.Text(), nullable=True),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
    )
    op.create_index("ix_user_tickets_user_id", "user_tickets", ["user_id"])
    op.create_index("ix_user_tickets_expires_at", "user_tickets", ["expires_at"])

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        _user(),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("sealed_content", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at"),
        _when("lease_until", nullable=True),
        sa.Column("claim", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("created_at"),
        _when("finished_at", nullable=True),
    )
    op.create_index("ix_mail_outbox_user_id", "mail_outbox", ["user_id"])
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("user_tickets")
