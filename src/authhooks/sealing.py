"""What the master key seals in the database, and how it is rotated.

The master key encrypts the private signing keys, the hooks' secrets, the
captured events, the content of mails waiting to be sent, and the key of the
client-secret hash. Rotation opens each of
them with the old key and seals it again with a new one, in one transaction:
the database is never half old, half new. The hash key itself does not change
(client secrets are stored only as hashes, so new hashes could not be made):
a client secret that may have leaked is rotated per client instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.gitsync import sources as git_sources
from authhooks.hooks import captures
from authhooks.hooks import secrets as hook_secrets
from authhooks.identity import tokens
from authhooks.identity.mail import outbox
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.storage import models

CLIENT_SECRET_HASH = "client-secret-hash"


def ensure_hash_key(session: Session, master_key: MasterKey) -> None:
    """Store the client-secret hash key, sealed, once. It starts as the key earlier
    versions derived from the master key, so that stored hashes keep verifying."""
    if session.get(models.SealedKey, CLIENT_SECRET_HASH) is None:
        # Derived from the key given: make sure it is the database's own, or every
        # stored client secret would stop verifying for good.
        tokens.check_opens(session, master_key)
        key = master_key.derive(CLIENT_SECRET_HASH)
        session.add(
            models.SealedKey(
                name=CLIENT_SECRET_HASH,
                value=master_key.encrypt(key, _context(CLIENT_SECRET_HASH)),
            )
        )
        session.flush()


def secret_hasher(session: Session, master_key: MasterKey) -> SecretHasher:
    row = session.get(models.SealedKey, CLIENT_SECRET_HASH)
    if row is None:
        raise LookupError("the client-secret hash key is missing: run `authhooks init`")
    return SecretHasher(master_key.decrypt(row.value, _context(row.name)))


@dataclass(frozen=True)
class Resealed:
    signing_keys: int
    hook_secrets: int
    captured_events: int
    sealed_keys: int
    waiting_mails: int = 0
    git_sources: int = 0


def reseal_everything(session: Session, old: MasterKey, new: MasterKey) -> Resealed:
    """Open everything sealed with ``old`` and seal it with ``new``, in ``session``'s
    transaction; MasterKeyError (and nothing changed) if ``old`` opens any of it not."""
    sealed = 0
    for row in session.scalars(select(models.SealedKey)):
        row.value = new.encrypt(old.decrypt(row.value, _context(row.name)), _context(row.name))
        sealed += 1
    return Resealed(
        signing_keys=tokens.reseal_signing_keys(session, old, new),
        hook_secrets=hook_secrets.reseal(session, old, new),
        captured_events=captures.reseal(session, old, new),
        sealed_keys=sealed,
        waiting_mails=outbox.reseal(session, old, new),
        git_sources=git_sources.reseal(session, old, new),
    )


def _context(name: str) -> bytes:
    return b"sealed-key:" + name.encode()
