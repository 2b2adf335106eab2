"""The real `authhooks` command with its own config dir: its console entry point run
in this process, as Typer's test runner would, or a real process (`logs --follow`,
and the steps that prove the installed command end to end)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from authhooks.cli.main import run
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
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The command's entry point run in this process, as the console script runs
        it, with this CLI's environment and directory (a subprocess costs 0.4 s)."""
        out, err = io.StringIO(), io.StringIO()
        saved, here = dict(os.environ), Path.cwd()
        os.environ.clear()
        os.environ.update(self.environment(env))
        os.chdir(self.cwd)
        code: int | str | None = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    run(list(args))
                except SystemExit as exit:
                    code = exit.code
        finally:
            os.chdir(here)
            os.environ.clear()
            os.environ.update(saved)
        status = code if isinstance(code, int) else (0 if code is None else 1)
        result = subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())
        # Whatever happens, the user sees one line, never a traceback.
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = self(*args, env=env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def process(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The console script in a process of its own, as a shell runs it (``input``
        piped to its stdin)."""
        return subprocess.run(
            [*AUTHHOOKS, *args],
            env=self.environment(env),
            cwd=self.cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

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
