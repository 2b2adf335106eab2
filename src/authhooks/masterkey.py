"""The master key: encrypts secrets at rest, seals the client-secret hash key, and
derives the keys of other purposes (the login throttle's keyed hash, the log
relay's sealed payloads).

It lives outside the database — in ``<data_dir>/master.key`` (mode 0600) or in
``AUTHHOOKS_MASTER_KEY`` — so a copy of the database alone reveals no private
key and no secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authhooks.private_files import write_private

KEY_FILE = "master.key"
_VERSION = b"\x01"
_NONCE_BYTES = 12
# How much longer than its plaintext a ciphertext of ``MasterKey.encrypt`` is:
# the version byte, the nonce and the GCM tag.
SEALED_OVERHEAD = len(_VERSION) + _NONCE_BYTES + 16


class MasterKeyError(Exception):
    """The master key is missing, malformed, or does not open what it should."""


class MasterKey:
    """AES-256-GCM with the master key, plus purpose-bound derived keys."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError("the master key must be 32 bytes (44 characters of base64)")
        self._aead = AESGCM(key)
        self._key = key

    @classmethod
    def load(cls, data_dir: Path, from_env: str = "") -> MasterKey:
        """The key from the environment value if given, else from the key file, created once."""
        if from_env:
            return cls(_decode(from_env, "AUTHHOOKS_MASTER_KEY"))
        path = data_dir / KEY_FILE
        try:
            return cls(_decode(path.read_text().strip(), str(path)))
        except FileNotFoundError:
            pass
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            write_private(path, base64.b64encode(key).decode() + "\n", exclusive=True)
        except FileExistsError:  # another process created it first: use theirs
            return cls(_decode(path.read_text().strip(), str(path)))
        return cls(key)

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt; ``context`` is bound as associated data so ciphertexts cannot be swapped."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt(self, ciphertext: bytes, context: bytes) -> bytes:
        """Decrypt what :meth:`encrypt` produced for the same ``context``."""
        if ciphertext[:1] != _VERSION:
            raise MasterKeyError("unknown ciphertext format")
        nonce, body = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context)
        except InvalidTag:
            raise MasterKeyError(
                "stored data does not open with this master key (was the key changed?)"
            ) from None

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose, independent of every other purpose's key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return hkdf.derive(self._key)


class SecretHasher:
    """Keyed hash (HMAC-SHA256): fast, constant-time to check, so only for what a
    guesser cannot enumerate without the key.

    Client secrets are hashed with a key kept in the database sealed with the
    master key (``sealing.py``); the login throttle names the counters of typed
    logins by their hash under a key derived from the master key
    (``users/throttle.py``), so that the table never holds what was typed.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def verify(self, secret: str, digest: bytes) -> bool:
        return hmac.compare_digest(self.hash(secret), digest)


def _decode(value: str, source: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} does not hold a base64 master key") from None
