"""The real ``authhooks`` command, run as a user runs it, with its own config dir."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import AUTHHOOKS, Server


@dataclass
class Cli:
    config: Path  # XDG_CONFIG_HOME
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOOKS_")}
        environment.update({"XDG_CONFIG_HOME": str(self.config), "COLUMNS": "200", "NO_COLOR": "1"})
        environment.update(self.env)
        environment.update(extra or {})
        return environment

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*AUTHHOOKS, *args],
            env=self.environment(env),
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        # Whatever happens, the user sees one line, never a traceback.
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = self(*args, env=env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*AUTHHOOKS, *args],
            env=self.environment(),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def logged_in(server: Server, where: Path, profile: str = "default") -> Cli:
    """A CLI with a profile for ``server``'s bootstrap admin."""
    where.mkdir(parents=True, exist_ok=True)
    cli = Cli(where / "config", where)
    cli.ok(
        "login",
        "--url",
        server.url,
        "--client-id",
        server.admin_id,
        "--audience",
        server.management_audience,
        "--profile",
        profile,
        env={"AUTHHOOKS_CLIENT_SECRET": server.admin_secret},
    )
    return cli
