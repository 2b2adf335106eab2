"""The data dir runs out of space (a small tmpfs): requests that must write fail
cleanly, the server stays up, and once space returns it works again with its
database intact."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import create_machine, run_server
from tests.stress.conftest import Report
from tests.users.helpers import PASSWORD, create_app


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, f"cannot mount a small tmpfs (needs root): {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Take every free byte of the file system at ``path``."""
    filler = path / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


def test_disk_full_gives_clean_errors_and_no_corruption(tmp_path: Path, report: Report) -> None:
    with (
        small_disk(tmp_path / "disk", "48m") as disk,
        run_server(tmp_path, "sqlite", data_dir=disk / "data") as server,
    ):
        machine = create_machine(server)
        app = create_app(server, app_type="regular_web")
        token_form = machine.token_form()

        def signup(number: int) -> int:
            return httpx.post(
                server.url + "/dbconnections/signup",
                json={
                    "client_id": app["client_id"],
                    "email": f"full-{number}@example.com",
                    "password": PASSWORD,
                },
                timeout=15,
            ).status_code

        assert signup(0) == 200
        filler = fill(disk)
        seen: Counter[str] = Counter()
        for number in range(1, 41):
            seen[f"signup {signup(number)}"] += 1
            seen[
                f"token {httpx.post(server.url + '/oauth/token', data=token_form).status_code}"
            ] += 1
            with server.api() as api:
                seen[f"api {api.post('/clients', json={'name': f'c{number}'}).status_code}"] += 1
        statuses = {answer.split()[1] for answer in seen}
        assert statuses <= {"200", "201", "503"}, seen  # clean: no 500, no crash
        assert seen["signup 503"] >= 1, seen
        assert server.process is not None
        assert server.process.poll() is None  # still serving

        filler.unlink()
        deadline = time.monotonic() + 30
        while signup(100) != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        checked = sqlite3.connect(disk / "data" / "authhooks.db")
        try:
            assert checked.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {
                row[0]
                for row in checked.execute("SELECT email FROM users WHERE email LIKE 'full-%'")
            }
        finally:
            checked.close()
        assert {"full-0@example.com", "full-100@example.com"} <= stored
        report.add(
            "data dir full (48 MiB tmpfs)",
            ", ".join(f"{key} x{count}" for key, count in sorted(seen.items()))
            + "; after space returns: signups work, integrity_check ok",
        )
