"""Settings: environment, TOML file, defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from authhooks.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AUTHHOOKS_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = Settings()
    assert settings.issuer == "http://127.0.0.1:8000/"
    assert settings.management_audience == "http://127.0.0.1:8000/api/v2/"
    assert settings.signing_algorithm == "RS256"
    assert settings.data_dir == Path(".authhooks")
    assert settings.database_url == f"sqlite:///{Path('.authhooks/authhooks.db').resolve()}"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHHOOKS_ISSUER", "https://id.example.com")
    monkeypatch.setenv("AUTHHOOKS_SIGNING_ALGORITHM", "ES256")
    monkeypatch.setenv("AUTHHOOKS_TOKEN_LIFETIME", "600")
    settings = Settings()
    assert settings.issuer == "https://id.example.com/"
    assert settings.signing_algorithm == "ES256"
    assert settings.token_lifetime == 600


def test_toml_file_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "authhooks.toml"
    config.write_text('issuer = "https://file.example.com/"\nport = 9000\ntoken_lifetime = 120\n')
    monkeypatch.setenv("AUTHHOOKS_CONFIG", str(config))
    monkeypatch.setenv("AUTHHOOKS_TOKEN_LIFETIME", "300")
    settings = Settings()
    assert settings.issuer == "https://file.example.com/"
    assert settings.port == 9000
    assert settings.token_lifetime == 300


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ISSUER", "ftp://x/"),
        ("SIGNING_ALGORITHM", "HS256"),
        ("TOKEN_LIFETIME", "10"),
        ("PORT", "70000"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"AUTHHOOKS_{name}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_key_in_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "authhooks.toml"
    config.write_text("isuer = 'typo'\n")
    monkeypatch.setenv("AUTHHOOKS_CONFIG", str(config))
    with pytest.raises(ValidationError, match="isuer"):
        Settings()


def test_master_key_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHHOOKS_MASTER_KEY", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=")
    assert "c2VjcmV0" not in repr(Settings())


def test_tls_files_go_together_and_make_the_default_issuer_https(tmp_path: Path) -> None:
    served = Settings(tls_certfile=tmp_path / "cert.pem", tls_keyfile=tmp_path / "key.pem")
    assert served.issuer == "https://127.0.0.1:8000/"
    with pytest.raises(ValidationError, match="set both, or neither"):
        Settings(tls_certfile=tmp_path / "cert.pem")
