"""The client commands' tests share one server per module: they enable hooks, which
would change other modules' tokens on the session's server.

That server uses SQLite only. The CLI is a client of the management API, whose
storage is tested on every backend elsewhere; the one CLI behaviour that depends
on the backend (following the logs of several server processes) starts servers
of each backend itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("sqlite"), "sqlite") as running:
        yield running
