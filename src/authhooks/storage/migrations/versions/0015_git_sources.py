"""Git sources: repositories whose pushes deploy hooks, their deployments, and the
source (and commit) of each hook and version a deployment made.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "git_sources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("repository", sa.String(2048), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("webhook_secret", sa.LargeBinary(), nullable=False),
        sa.Column("credential_kind", sa.String(32), nullable=True),
        sa.Column("credentials", sa.LargeBinary(), nullable=True),
        sa.Column("ssh_known_hosts", sa.Text(), nullable=True),
        sa.Column("poll_interval", sa.Integer(), nullable=True),
        _when("polled_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_table(
        "git_deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "source_id",
            sa.String(32),
            sa.ForeignKey("git_sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=True),
        sa.Column("dedupe_commit", sa.String(64), nullable=True),
        sa.Column("author", sa.String(300), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        _when("lease_until", nullable=True),
        sa.Column("claim", sa.String(16), nullable=True),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.UniqueConstraint("source_id", "delivery_id", name="uq_git_deployments_delivery"),
        sa.UniqueConstraint("source_id", "dedupe_commit", name="uq_git_deployments_commit"),
    )
    op.create_index(
        "ix_git_deployments_source_created", "git_deployments", ["source_id", "created_at"]
    )
    op.create_index("ix_git_deployments_status", "git_deployments", ["status"])
    # Plain ADD COLUMN (see 0013): a SQLite table copy of hooks would cascade-delete
    # their versions, secrets and invocations.
    op.execute("ALTER TABLE hooks ADD COLUMN source_id VARCHAR(32)")
    op.create_index("ix_hooks_source_id", "hooks", ["source_id"])
    op.execute("ALTER TABLE hook_versions ADD COLUMN source_id VARCHAR(32)")
    op.execute('ALTER TABLE hook_versions ADD COLUMN "commit" VARCHAR(64)')


def downgrade() -> None:
    op.execute('ALTER TABLE hook_versions DROP COLUMN "commit"')
    op.execute("ALTER TABLE hook_versions DROP COLUMN source_id")
    op.drop_index("ix_hooks_source_id", "hooks")
    op.execute("ALTER TABLE hooks DROP COLUMN source_id")
    op.drop_table("git_deployments")
    op.drop_table("git_sources")
