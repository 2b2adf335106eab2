"""``authhooks init``, ``migrate``, ``keys rotate`` and bad settings, run as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import stat
import subprocess
from pathlib import Path

from sqlalchemy import select

from authhooks.storage import models
from authhooks.storage.database import Database
from tests.conftest import AUTHHOOKS


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
    environment.update({"AUTHHOOKS_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [*AUTHHOOKS, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def on_a_terminal(tmp_path: Path, *args: str) -> str:
    """What ``authhooks *args`` shows a person at a terminal (its stderr is a pty)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
    environment.update({"AUTHHOOKS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            [*AUTHHOOKS, *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            timeout=60,
            check=False,
        )
        assert process.returncode == 0
        os.close(follower)
        follower = -1
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything was read
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return shown.decode(errors="replace")


def test_init_creates_admin_once(tmp_path: Path) -> None:
    first = run(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "data" / "bootstrap-admin.json"
    admin = json.loads(saved.read_text())
    # Not a terminal (a log, perhaps): the id and where the secret is, never the secret.
    assert admin["client_id"] in first.stderr
    assert "bootstrap-admin.json" in first.stderr
    assert admin["client_secret"] not in first.stderr
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "master.key").stat().st_mode) == 0o600
    second = run(tmp_path, "init")
    assert second.returncode == 0
    assert admin["client_secret"] not in second.stderr
    assert json.loads(saved.read_text()) == admin


def test_migrate_and_rotate(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    assert run(tmp_path, "migrate").returncode == 0
    rotated = run(tmp_path, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "new signing key" in rotated.stderr


def test_invalid_settings_exit_2_without_traceback(tmp_path: Path) -> None:
    result = run(tmp_path, "init", AUTHHOOKS_SIGNING_ALGORITHM="none")
    assert result.returncode == 2
    assert "signing_algorithm" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_master_key_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run(tmp_path, "init", AUTHHOOKS_MASTER_KEY="bm90IDMyIGJ5dGVz")
    assert result.returncode == 2
    assert "master key" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_before_init_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run(tmp_path, "keys", "rotate")
    assert result.returncode == 2
    assert "authhooks init" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run(
        tmp_path, "init", AUTHHOOKS_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert result.returncode == 2
    assert "database" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_admin_recovers_access(tmp_path: Path) -> None:
    first = run(tmp_path, "init")
    assert first.returncode == 0
    old = json.loads((tmp_path / "data" / "bootstrap-admin.json").read_text())
    again = run(tmp_path, "init", "--new-admin")
    assert again.returncode == 0, again.stderr
    new = json.loads((tmp_path / "data" / "bootstrap-admin.json").read_text())
    assert new["client_id"] != old["client_id"]
    assert new["client_id"] in again.stderr


def test_a_person_at_a_terminal_is_shown_the_new_secret_once(tmp_path: Path) -> None:
    shown = on_a_terminal(tmp_path, "init")
    admin = json.loads((tmp_path / "data" / "bootstrap-admin.json").read_text())
    assert admin["client_secret"] in shown
    assert admin["client_secret"] not in on_a_terminal(tmp_path, "init")


def test_concurrent_init_creates_one_of_everything(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
    environment["AUTHHOOKS_DATA_DIR"] = str(tmp_path / "data")
    processes = [
        subprocess.Popen(
            [*AUTHHOOKS, "init"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    database = Database(f"sqlite:///{tmp_path / 'data' / 'authhooks.db'}")
    try:
        with database.session() as session:
            signing = session.scalars(
                select(models.SigningKey).where(models.SigningKey.rotated_at.is_(None))
            ).all()
            admins = session.scalars(select(models.Client)).all()
            systems = session.scalars(select(models.ResourceServer)).all()
    finally:
        database.dispose()
    assert (len(signing), len(admins), len(systems)) == (1, 1, 1)
