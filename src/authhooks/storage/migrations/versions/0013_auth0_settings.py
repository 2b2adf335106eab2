"""Auth0's fields that mean nothing here, kept as sent on clients and resource
servers, so that Auth0's tools read back what they wrote.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TABLES = ("clients", "resource_servers")


def upgrade() -> None:
    # Plain ADD COLUMN, written out: alembic copies a SQLite table to add a column
    # with a default, and dropping the old copy, with foreign keys on, deletes every
    # grant that names it by cascade.
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN auth0_settings JSON NOT NULL DEFAULT '{{}}'")


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN auth0_settings")
