"""Auth0's Python SDKs against a server behind TLS. Each SDK is installed by
``scripts/setup.sh dev`` into a directory of its own (``.auth0-python-<major>``),
apart from the server's packages, and a script of calls runs with it in a process
of its own, printing one JSON object: each call's name, and what it answered or
raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.compat.conftest import Tls
from tests.conftest import Server, unique

HERE = Path(__file__).parent


def run_calls(sdk: str, calls: str, server: Server, tls: Tls) -> dict[str, Any]:
    """Run ``calls`` (a script beside this module) with the SDK installed in ``sdk``,
    against ``server``: it gets the server's host:port as its domain, the bootstrap
    admin's credentials, the management audience and a unique name."""
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE / sdk),
        # requests (4.x, and 6.x's Authentication API) trusts REQUESTS_CA_BUNDLE;
        # httpx (6.x's Management API and its token provider) SSL_CERT_FILE.
        "REQUESTS_CA_BUNDLE": str(tls.bundle),
        "SSL_CERT_FILE": str(tls.bundle),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / calls),
            server.url.removeprefix("https://"),
            server.admin_id,
            server.admin_secret,
            server.management_audience,
            unique("sdk"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results: dict[str, Any] = json.loads(done.stdout)
    return results
