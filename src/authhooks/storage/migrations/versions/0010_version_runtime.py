"""Each hook version records its own language and dependencies, so that a rollback
brings back the runtime and packages the code was written for.

``runtime`` is ``python`` or ``node``; ``dependencies`` the declared packages (name
to exact version); ``resolved`` the whole resolved set, with hashes, as installed;
``installed`` the key of that set in the dependency store. Existing versions are
Python without dependencies, as every hook was.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hook_versions") as table:
        table.add_column(
            sa.Column("runtime", sa.String(16), nullable=False, server_default="python")
        )
        table.add_column(
            sa.Column("dependencies", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        table.add_column(sa.Column("resolved", sa.JSON(), nullable=True))
        table.add_column(sa.Column("installed", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hook_versions") as table:
        table.drop_column("installed")
        table.drop_column("resolved")
        table.drop_column("dependencies")
        table.drop_column("runtime")
