"""Auth0's Node SDK, auth0 7.1 from npm, against authhooks behind TLS, as a
team's code calls it: its current ManagementClient (which takes its token by
client credentials itself; v7 ships no AuthenticationClient) and its legacy
node-auth0 v4 API (auth0/legacy: ManagementClient and AuthenticationClient).
Clients, APIs and hooks are created with Auth0's fields and sent back as read;
55 client grants are seen whole through each client's pagination; people sign
up, log in with the password-realm grant and ask for a reset link; refusals
reach the SDK's errors with their status, code and text."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.compat.conftest import Tls
from tests.conftest import Server, unique
from tests.mail.conftest import mail_server
from tests.mail.smtp import MailCatcher

HERE = Path(__file__).parent
CALLS = HERE / "node_auth0_calls.js"
REALM = "Username-Password-Authentication"
GRANTS = 55


def run_calls(server: Server, tls: Tls, name: str, mode: str = "all") -> dict[str, Any]:
    done = subprocess.run(
        [
            "node",
            str(CALLS),
            server.url.removeprefix("https://"),
            server.admin_id,
            server.admin_secret,
            server.management_audience,
            name,
            mode,
        ],
        cwd=HERE,  # where node_modules is
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(tls.ca)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results: dict[str, Any] = json.loads(done.stdout)
    return results


def answered(results: dict[str, Any], name: str) -> Any:
    assert name in results, f"{name} was not called: a call it needs failed"
    assert "ok" in results[name], (name, results[name])
    return results[name]["ok"]


def thrown(results: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in results, f"{name} was not called: a call it needs failed"
    assert "thrown" in results[name], (name, results[name])
    error: dict[str, Any] = results[name]["thrown"]
    return error


def test_current_and_legacy_clients_work_unchanged(tls_server: Server, tls: Tls) -> None:
    name = unique("node")
    results = run_calls(tls_server, tls, name)
    for prefix in ("cur", "leg"):
        api = answered(results, f"{prefix}_create_api")
        assert api["signing_alg"] == "RS256"  # accepted, no effect: stored and answered back
        assert api["allow_offline_access"] is False
        assert api["token_dialect"] == "access_token"
        app = answered(results, f"{prefix}_create_client")
        assert app["oidc_conformant"] is True
        assert app["jwt_configuration"] == {"alg": "RS256", "lifetime_in_seconds": 36000}
        # Sent back as read (less client_id), nothing changes, not even updated_at.
        read = answered(results, f"{prefix}_get_client")
        assert answered(results, f"{prefix}_update_client_as_read") == read
        assert answered(results, f"{prefix}_create_grants") == GRANTS
        hook = answered(results, f"{prefix}_get_hook")
        assert hook["runtime"] == "node"
        assert answered(results, f"{prefix}_update_hook_as_read") == hook
        assert answered(results, f"{prefix}_tenant_settings")["friendly_name"]

    # The current client: its token by client credentials, for the SDK's default
    # audience (https://<domain>/api/v2/), which is the server's own.
    assert answered(results, "cur_token")["aud"] == tls_server.management_audience
    # Auto-pagination sees every grant: from/take, 10 at a time.
    grants = answered(results, "cur_list_grants")
    assert len(set(grants)) == len(grants) == GRANTS
    # ... and every API: page/per_page with totals, 10 at a time.
    apis = answered(results, "cur_list_apis")
    ours = [found for found in apis["found"] if f"{name}-cur" in found]
    assert len(set(ours)) == len(ours) == GRANTS + 1
    assert len(set(apis["found"])) == len(apis["found"]) == apis["total"]
    assert tls_server.management_audience in apis["found"]
    assert answered(results, "cur_list_apis_by_identifier") == [
        f"https://{name}-cur-{n}.example.com/" for n in (0, 1)
    ]
    clients = answered(results, "cur_list_clients")  # two at a time
    assert len(set(clients["ids"])) == len(clients["ids"]) == clients["total"] >= 3
    assert answered(results, "cur_create_client")["client_id"] in clients["ids"]
    assert set(answered(results, "cur_list_web_apps")) == {"regular_web"}
    assert answered(results, "cur_connections") == [REALM]
    assert answered(results, "cur_connections_by_strategy") == [REALM]

    # The legacy client: tokens, and its own paging by hand.
    assert answered(results, "leg_token")["token_type"] == "Bearer"
    assert "read:clients" in answered(results, "leg_token")["scope"].split()
    by_page = answered(results, "leg_list_grants_by_page")
    assert len(set(by_page["ids"])) == len(by_page["ids"]) == GRANTS
    assert set(by_page["totals"]) == {GRANTS}
    by_checkpoint = answered(results, "leg_list_grants_by_checkpoint")
    assert sorted(by_checkpoint) == sorted(by_page["ids"])
    listed = answered(results, "leg_list_clients")
    assert (listed["start"], listed["limit"], len(listed["clients"])) == (0, 2, 2)
    assert listed["total"] >= 4
    assert [each["name"] for each in answered(results, "leg_connections")] == [REALM]

    # People, through the legacy AuthenticationClient: signup, the password-realm
    # grant, users by email (read by both clients).
    email = f"{name}-leg@example.com"
    signed_up = answered(results, "leg_signup")
    assert signed_up["email"] == email
    assert signed_up["id"] == signed_up["_id"]  # the SDK maps Auth0's _id
    login = answered(results, "leg_login")
    assert login["token_type"] == "Bearer"
    assert login["scope"] == "read:notes"
    assert login["sub"] == f"auth0|{signed_up['_id']}"
    for prefix in ("cur", "leg"):
        (user,) = answered(results, f"{prefix}_users_by_email")
        assert user["email"] == email
        assert user["user_id"] == login["sub"]

    # Refusals reach the SDK's errors with their status, code and text: the
    # current client's ManagementError carries the body, the legacy client's
    # ManagementApiError and AuthApiError take the message and code from it.
    read_only = thrown(results, "cur_update_client_read_only")
    assert read_only["statusCode"] == 400
    assert read_only["body"]["errorCode"] == "invalid_body"
    assert "client_id: read-only, and not as stored" in read_only["body"]["message"]
    assert "client_id: read-only" in read_only["message"]
    bad = thrown(results, "cur_bad_client")
    assert bad["statusCode"] == 400
    assert "name: Value error, may not contain < or >" in bad["body"]["message"]
    assert "may not contain < or >" in bad["message"]
    read_only = thrown(results, "leg_update_client_read_only")
    assert read_only["name"] == "ManagementApiError"
    assert (read_only["statusCode"], read_only["errorCode"]) == (400, "invalid_body")
    assert read_only["message"] == "client_id: read-only, and not as stored"
    bad = thrown(results, "leg_bad_client")
    assert (bad["name"], bad["statusCode"], bad["errorCode"]) == (
        "ManagementApiError",
        400,
        "invalid_body",
    )
    assert bad["message"] == "Payload validation error: name: Value error, may not contain < or >"
    wrong = thrown(results, "cur_wrong_secret")
    assert wrong["statusCode"] == 401
    assert wrong["body"]["error"] == "invalid_client"
    wrong = thrown(results, "leg_wrong_secret")
    assert (wrong["name"], wrong["statusCode"], wrong["error"]) == (
        "AuthApiError",
        401,
        "invalid_client",
    )
    wrong = thrown(results, "leg_wrong_password")
    assert (wrong["name"], wrong["statusCode"], wrong["error"]) == (
        "AuthApiError",
        400,
        "invalid_grant",
    )
    assert wrong["error_description"] == wrong["message"] == "wrong email or password"
    # This server has no SMTP server: change password says so, in Auth0's shape.
    no_mail = thrown(results, "leg_change_password")
    assert (no_mail["name"], no_mail["statusCode"], no_mail["error"]) == (
        "AuthApiError",
        400,
        "mail_not_configured",
    )
    assert "SMTP" in no_mail["error_description"]


def test_change_password_mails_a_reset_link(tls: Tls, backend: str, tmp_path: Path) -> None:
    smtp = MailCatcher().start()
    try:
        with mail_server(
            tmp_path, backend, smtp, tls_certfile=tls.certificate, tls_keyfile=tls.key
        ) as mail:
            name = unique("node")
            results = run_calls(mail.server, tls, name, "change-password")
            email = f"{name}@example.com"
            assert answered(results, "leg_signup")["email"] == email
            # Auth0's sentence, as the SDK reads it: text, not JSON.
            assert (
                answered(results, "leg_change_password")
                == "We've just sent you an email to reset your password."
            )
            reset = mail.wait_for_mail(email, 2)  # the first is the signup's verification
            assert reset.message["Subject"] == "Reset your password"
            assert reset.link("lo/reset").startswith(mail.server.issuer + "lo/reset?ticket=")
    finally:
        smtp.stop()
