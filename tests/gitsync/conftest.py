"""The server every git-sync test module starts: one per module and database,
allowed local repositories (file:// and loopback), which the tests push to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS, Server, run_server


@pytest.fixture(scope="module", params=BACKENDS)
def git_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("git"), request.param, git_allow_local_repositories="true"
    ) as running:
        yield running
