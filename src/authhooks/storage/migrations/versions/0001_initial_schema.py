"""Initial schema: signing keys, clients, resource servers, client grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    generation = op.create_table(
        "generation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(generation, [{"id": 1, "value": 1}])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("app_type", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("client_metadata", sa.JSON(), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "resource_servers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("identifier", sa.String(600), nullable=False, unique=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("token_lifetime", sa.Integer(), nullable=True),
        sa.Column("is_system", sa.Boolean(), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "client_grants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "audience",
            sa.String(600),
            sa.ForeignKey("resource_servers.identifier", ondelete="CASCADE", onupdate="CASCADE"),
            nullable=False,
        ),
        sa.Column("scope", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("client_id", "audience", name="uq_client_grant"),
    )
    op.create_index("ix_client_grants_audience", "client_grants", ["audience"])


def downgrade() -> None:
    op.drop_table("client_grants")
    op.drop_table("resource_servers")
    op.drop_table("clients")
    op.drop_table("signing_keys")
    op.drop_table("generation")
