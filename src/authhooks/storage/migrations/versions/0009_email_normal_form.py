"""Emails in their new normal form (NFKC, local part lower-cased, domain IDNA-encoded),
and no throttle counter named by a typed login.

Each user's and admin's email takes its normal form, oldest first, unless that form
is already another's email (two look-alike accounts) or the address no longer
validates: those are left as they were, with a warning naming them, for an operator
to settle (docs/users.md). Throttle counters of unknown logins held the login as
typed; they are transient (a window of at most a day), so they are dropped rather
than hashed (the key is derived from the master key, which migrations do not hold).

The rule is written out here, not imported, so that this migration does what it
did when it was written whatever the code does later.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger("authhooks.migrations")


def _normal(email: str) -> str | None:
    try:
        checked = validate_email(unicodedata.normalize("NFKC", email), check_deliverability=False)
    except EmailNotValidError:
        return None
    normal = f"{unicodedata.normalize('NFKC', checked.local_part.lower())}@{checked.ascii_domain}"
    return normal if len(normal) <= 254 else None


def _normalise(table_name: str, kind: str) -> None:
    table = sa.table(
        table_name,
        sa.column("id", sa.String),
        sa.column("email", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(table.c.id, table.c.email).order_by(table.c.created_at, table.c.id)
    ).all()
    holders = {email: row_id for row_id, email in rows}
    for row_id, email in rows:
        normal = _normal(email)
        if normal == email:
            continue
        if normal is None:
            log.warning(
                "%s %s: email left as it was: it is not a valid address under the new rules",
                kind,
                row_id,
            )
            continue
        if normal in holders:
            log.warning(
                "%s %s: email left as it was: its normal form is the email of %s %s",
                kind,
                row_id,
                kind,
                holders[normal],
            )
            continue
        connection.execute(table.update().where(table.c.id == row_id).values(email=normal))
        del holders[email]
        holders[normal] = row_id


def upgrade() -> None:
    _normalise("users", "user")
    _normalise("admins", "admin")
    failures = sa.table("login_failures", sa.column("key", sa.String))
    op.get_bind().execute(
        failures.delete().where(
            sa.or_(failures.c.key.like("login:%"), failures.c.key.like("admin-login:%"))
        )
    )


def downgrade() -> None:
    # The earlier spellings are not kept; the normal forms work with earlier versions too.
    pass
