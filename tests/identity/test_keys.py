"""Signing keys: JWKS, rotation with the old key kept published, ES256, algorithm change."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import update

from authhooks.identity.directory import Directory
from authhooks.identity.tokens import (
    InvalidAccessToken,
    ensure_signing_key,
    load_key_set,
    rotate_signing_key,
    verify_access_token,
)
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from tests.conftest import CACHE_TTL, Server, create_machine, run_server


def verify(server: Server, token: str, audience: str) -> dict[str, object]:
    jwks = jwt.PyJWKClient(server.url + "/.well-known/jwks.json", cache_keys=False)
    key = jwks.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    return dict(
        jwt.decode(
            token, key.key, algorithms=[header["alg"]], audience=audience, issuer=server.issuer
        )
    )


def test_rotation_keeps_old_tokens_verifiable(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as server:
        machine = create_machine(server)
        old = server.token(
            machine.client_id, machine.client_secret, audience=machine.audience
        ).json()["access_token"]
        old_kid = jwt.get_unverified_header(old)["kid"]

        result = server.cli("keys", "rotate")
        assert result.returncode == 0, result.stderr
        time.sleep(CACHE_TTL * 3)

        new = server.token(
            machine.client_id, machine.client_secret, audience=machine.audience
        ).json()["access_token"]
        new_kid = jwt.get_unverified_header(new)["kid"]
        assert new_kid != old_kid
        kids = [
            key["kid"] for key in httpx.get(server.url + "/.well-known/jwks.json").json()["keys"]
        ]
        assert set(kids) == {old_kid, new_kid}
        assert verify(server, old, machine.audience)["client_id"] == machine.client_id
        assert verify(server, new, machine.audience)["client_id"] == machine.client_id
        # The management API still accepts a token signed before the rotation.
        with server.api() as api:
            assert api.get("/clients").status_code == 200


def test_revoke_previous_withdraws_the_old_key_at_once(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend) as server:
        old_token = server.management_token()
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        result = server.cli("keys", "rotate", "--revoke-previous")
        assert result.returncode == 0, result.stderr
        time.sleep(CACHE_TTL * 3)
        kids = [
            key["kid"] for key in httpx.get(server.url + "/.well-known/jwks.json").json()["keys"]
        ]
        assert old_kid not in kids
        assert len(kids) == 1
        refused = httpx.get(
            server.url + "/api/v2/clients", headers={"Authorization": f"Bearer {old_token}"}
        )
        assert refused.status_code == 401


def test_es256_server_signs_with_es256(backend: str, tmp_path: Path) -> None:
    with run_server(tmp_path, backend, signing_algorithm="ES256") as server:
        machine = create_machine(server)
        token = server.token(
            machine.client_id, machine.client_secret, audience=machine.audience
        ).json()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "ES256"
        assert verify(server, token, machine.audience)["sub"] == f"{machine.client_id}@clients"
        (key,) = httpx.get(server.url + "/.well-known/jwks.json").json()["keys"]
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        discovery = httpx.get(server.url + "/.well-known/openid-configuration").json()
        assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]


def test_jwks_holds_public_keys_only(server: Server) -> None:
    response = httpx.get(server.url + "/.well-known/jwks.json")
    assert response.status_code == 200
    for key in response.json()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert key["kid"]
        assert key["use"] == "sig"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    db.migrate()
    return db


def test_changing_the_algorithm_setting_rotates(database: Database, tmp_path: Path) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        first = ensure_signing_key(session, master_key, "RS256", 3600)
    with database.session() as session:
        assert ensure_signing_key(session, master_key, "RS256", 3600).kid == first.kid
    with database.session() as session:
        second = ensure_signing_key(session, master_key, "ES256", 3600)
    assert second.alg == "ES256"
    with database.session() as session:
        keys = load_key_set(session, master_key)
    assert keys.signing.kid == second.kid
    assert set(keys.public) == {first.kid, second.kid}


def test_retired_key_leaves_jwks_after_its_window(database: Database, tmp_path: Path) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        first = ensure_signing_key(session, master_key, "ES256", 3600)
    with database.session() as session:
        second = rotate_signing_key(session, master_key, "ES256", 3600)
    with database.session() as session:
        retired = session.get(models.SigningKey, first.kid)
        assert retired is not None
        assert retired.publish_until is not None
        # Published for the token lifetime plus a grace period, not forever.
        assert timedelta(hours=1) < retired.publish_until - utcnow() < timedelta(hours=2)
        session.execute(
            update(models.SigningKey)
            .where(models.SigningKey.kid == first.kid)
            .values(publish_until=utcnow() - timedelta(seconds=1))
        )
    with database.session() as session:
        keys = load_key_set(session, master_key)
    assert set(keys.public) == {second.kid}


def test_directory_drops_a_retired_key_when_its_window_ends(
    database: Database, tmp_path: Path
) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        first = ensure_signing_key(session, master_key, "ES256", 3600)
    with database.session() as session:
        rotate_signing_key(session, master_key, "ES256", 3600)
        # Its window ends in a second; no later change bumps the counter.
        session.execute(
            update(models.SigningKey)
            .where(models.SigningKey.kid == first.kid)
            .values(publish_until=utcnow() + timedelta(seconds=1))
        )
    directory = Directory(database, master_key, ttl=3600)

    async def published() -> set[str]:
        return set((await directory.keys()).public)

    assert first.kid in asyncio.run(published())
    time.sleep(1.2)
    assert first.kid not in asyncio.run(published())


def test_private_keys_are_encrypted_at_rest(database: Database, tmp_path: Path) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        key = ensure_signing_key(session, master_key, "ES256", 3600)
        stored = bytes(key.private_key)
    assert b"PRIVATE KEY" not in stored
    with database.session() as session, pytest.raises(Exception, match="does not open"):
        load_key_set(session, MasterKey.load(tmp_path / "other"))


def test_verify_rejects_a_token_of_another_type(database: Database, tmp_path: Path) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        ensure_signing_key(session, master_key, "ES256", 3600)
        keys = load_key_set(session, master_key)
    claims = {
        "iss": "https://i/",
        "aud": "a",
        "sub": "s",
        "client_id": "c",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    id_token = jwt.encode(
        claims,
        keys.signing.private_key,
        algorithm="ES256",
        headers={"kid": keys.signing.kid, "typ": "JWT"},
    )
    with pytest.raises(InvalidAccessToken, match="typ must be at\\+jwt"):
        verify_access_token(id_token, keys, "https://i/", "a")


def test_a_rotated_key_is_published_before_it_signs(database: Database, tmp_path: Path) -> None:
    """Every process lists the new key in its JWKS before any token carries it."""
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        first = ensure_signing_key(session, master_key, "ES256", 3600)
    with database.session() as session:
        second = rotate_signing_key(session, master_key, "ES256", 3600, ahead=timedelta(seconds=30))
    with database.session() as session:
        keys = load_key_set(session, master_key)
    assert keys.signing.kid == first.kid  # the old key signs until the switch
    assert set(keys.public) == {first.kid, second.kid}
    assert keys.valid_until is not None
    assert 20 < keys.valid_until - time.time() <= 30  # reloaded at the switch
    with database.session() as session:
        session.execute(
            update(models.SigningKey)
            .where(models.SigningKey.kid == first.kid)
            .values(rotated_at=utcnow() - timedelta(seconds=1))
        )
    with database.session() as session:
        assert load_key_set(session, master_key).signing.kid == second.kid


def test_revoking_switches_at_once_whatever_was_ahead(database: Database, tmp_path: Path) -> None:
    master_key = MasterKey.load(tmp_path)
    with database.session() as session:
        first = ensure_signing_key(session, master_key, "ES256", 3600)
    with database.session() as session:
        rotate_signing_key(session, master_key, "ES256", 3600, ahead=timedelta(seconds=30))
    with database.session() as session:
        third = rotate_signing_key(session, master_key, "ES256", 3600, revoke_previous=True)
    with database.session() as session:
        keys = load_key_set(session, master_key)
    assert keys.signing.kid == third.kid
    assert set(keys.public) == {third.kid}
    assert first.kid not in keys.public
