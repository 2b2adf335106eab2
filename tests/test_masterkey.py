"""The master key: file creation, environment override, AES-GCM with bound context."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from authhooks.masterkey import KEY_FILE, MasterKey, MasterKeyError, SecretHasher


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = MasterKey.load(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ciphertext = first.encrypt(b"hello", b"ctx")
    assert MasterKey.load(tmp_path).decrypt(ciphertext, b"ctx") == b"hello"


def test_environment_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    MasterKey.load(tmp_path, key)
    assert not (tmp_path / KEY_FILE).exists()


def test_context_is_bound(tmp_path: Path) -> None:
    key = MasterKey.load(tmp_path)
    ciphertext = key.encrypt(b"secret", b"signing-key:a")
    with pytest.raises(MasterKeyError):
        key.decrypt(ciphertext, b"signing-key:b")


def test_tampered_ciphertext_is_refused(tmp_path: Path) -> None:
    key = MasterKey.load(tmp_path)
    ciphertext = bytearray(key.encrypt(b"secret", b"ctx"))
    ciphertext[-1] ^= 1
    with pytest.raises(MasterKeyError):
        key.decrypt(bytes(ciphertext), b"ctx")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_environment_key_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(MasterKeyError):
        MasterKey.load(tmp_path, value)


def test_secret_hasher_is_keyed(tmp_path: Path) -> None:
    one = SecretHasher(MasterKey.load(tmp_path / "a").derive("client-secret-hash"))
    two = SecretHasher(MasterKey.load(tmp_path / "b").derive("client-secret-hash"))
    digest = one.hash("s3cret")
    assert one.verify("s3cret", digest)
    assert not one.verify("s3cret!", digest)
    assert not two.verify("s3cret", digest)


def test_concurrent_first_loads_agree(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: MasterKey.load(tmp_path), range(16)))
    ciphertext = keys[0].encrypt(b"x", b"c")
    assert all(key.decrypt(ciphertext, b"c") == b"x" for key in keys)
