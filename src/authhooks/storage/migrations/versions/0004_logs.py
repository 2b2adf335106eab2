"""Log records in stored order (seq), flags for truncated and test runs, captured
events for replay, and the per-hook capture switch.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hooks") as batch:
        batch.add_column(
            sa.Column("capture_events", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("hook_invocations") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("captured_event", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("capture_expires_at", sa.DateTime(timezone=True), nullable=True))
    # Existing records take their place in the order they started.
    connection = op.get_bind()
    ids = connection.execute(
        sa.text("SELECT id FROM hook_invocations ORDER BY started_at, id")
    ).scalars()
    rows = [{"seq": number, "id": record_id} for number, record_id in enumerate(ids, 1)]
    if rows:
        connection.execute(sa.text("UPDATE hook_invocations SET seq = :seq WHERE id = :id"), rows)
    with op.batch_alter_table("hook_invocations") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.create_unique_constraint("uq_hook_invocations_seq", ["seq"])
    op.create_table(
        "log_sequence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    connection.execute(
        sa.text("INSERT INTO log_sequence (id, value) VALUES (1, :value)"), {"value": len(rows)}
    )


def downgrade() -> None:
    op.drop_table("log_sequence")
    with op.batch_alter_table("hook_invocations") as batch:
        batch.drop_constraint("uq_hook_invocations_seq", type_="unique")
        for column in ("capture_expires_at", "captured_event", "test", "truncated", "seq"):
            batch.drop_column(column)
    with op.batch_alter_table("hooks") as batch:
        batch.drop_column("capture_events")
