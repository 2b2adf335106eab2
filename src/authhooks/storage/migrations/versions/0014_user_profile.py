"""Users' profile (Auth0's name, nickname, given_name, family_name, picture) and
phone_verified, which Auth0's tools send and read back.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_PROFILE = {
    "name": "VARCHAR(300)",
    "nickname": "VARCHAR(300)",
    "given_name": "VARCHAR(150)",
    "family_name": "VARCHAR(150)",
    "picture": "VARCHAR(2048)",
}


def upgrade() -> None:
    # Plain ADD COLUMN (see 0013): a SQLite table copy would cascade-delete what
    # names the users (sessions, refresh tokens, consents).
    for column, kind in _PROFILE.items():
        op.execute(f"ALTER TABLE users ADD COLUMN {column} {kind}")
    op.execute("ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT false")


def downgrade() -> None:
    for column in (*_PROFILE, "phone_verified"):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
