"""The dashboard in a real browser: sign in, the hooks page, a switch that changes
the server, an ended session, sign out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, create_machine, unique
from tests.dashboard.browser import chromium, client_sign_in_form, replace_code, signed_in, wait

NOTIFY = "def post_change_password(user, context):\n    pass\n"


@pytest.fixture
def hook(server: Server) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={"name": unique("page"), "script": NOTIFY, "triggerId": "post-change-password"},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def enabled(server: Server, hook_id: str) -> bool:
    with server.api() as api:
        return bool(api.get(f"/hooks/{hook_id}").json()["enabled"])


def test_sign_in_see_the_hooks_and_switch_one_on(server: Server, hook: dict[str, Any]) -> None:
    page = httpx.get(server.url + "/dashboard")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    with chromium() as browser:
        browser.get(server.url + "/dashboard#/hooks")
        client_sign_in_form(browser)
        wait(browser, lambda b: b.find_element(By.NAME, "client_id"))
        browser.find_element(By.NAME, "client_id").send_keys("nobody")
        browser.find_element(By.NAME, "client_secret").send_keys("wrong")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert alert.text == "wrong client id or secret"

        browser.find_element(By.NAME, "client_id").clear()
        browser.find_element(By.NAME, "client_id").send_keys(server.admin_id)
        browser.find_element(By.NAME, "client_secret").clear()
        browser.find_element(By.NAME, "client_secret").send_keys(server.admin_secret)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        row = wait(
            browser,
            lambda b: b.find_element(
                By.CSS_SELECTOR, f'[data-point="post-change-password"] [data-hook="{hook["name"]}"]'
            ),
        )
        assert "never" in row.find_element(By.CSS_SELECTOR, ".last-run").text
        with server.api() as api:  # a run: its outcome and time show in the row
            assert api.post(f"/hooks/{hook['id']}/test", json={}).status_code == 200
        browser.refresh()
        last_run = f'[data-hook="{hook["name"]}"] .last-run'
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, last_run).text.startswith("ok · "))
        row = browser.find_element(By.CSS_SELECTOR, f'[data-hook="{hook["name"]}"]')
        assert "HttpOnly" not in str(browser.execute_script("return document.cookie"))
        assert browser.execute_script("return document.cookie") == ""  # not readable by scripts

        row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        wait(browser, lambda _: enabled(server, hook["id"]))

        # The session ends behind the page's back (its API token lives on for at most
        # ten minutes): the page goes back to sign-in when it next asks, keeping its place.
        cookie = browser.get_cookie("authhooks_dashboard")
        assert cookie is not None
        assert cookie["httpOnly"] is True
        jar = {"authhooks_dashboard": cookie["value"]}
        csrf = httpx.get(server.url + "/dashboard/session", cookies=jar).json()["csrf_token"]
        ended = httpx.delete(
            server.url + "/dashboard/session", cookies=jar, headers={"X-CSRF-Token": csrf}
        )
        assert ended.status_code == 204
        browser.refresh()
        wait(browser, lambda b: b.find_element(By.NAME, "client_id"))
        assert browser.current_url.endswith("#/hooks")  # the page is kept

        # Signing in again, then out.
        browser.find_element(By.NAME, "client_id").send_keys(server.admin_id)
        browser.find_element(By.NAME, "client_secret").send_keys(server.admin_secret)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f'[data-hook="{hook["name"]}"]'))
        browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
        wait(browser, lambda b: b.find_element(By.NAME, "client_id"))
        assert browser.get_cookie("authhooks_dashboard") is None


def test_the_editor_shows_errors_at_their_line_saves_and_runs(
    server: Server, hook: dict[str, Any]
) -> None:
    with chromium() as browser:
        signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
        content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
        assert "def post_change_password" in content.text
        signature = browser.find_element(By.CSS_SELECTOR, ".signature").text
        assert (
            "post-change-password (Hooks, Python): def post_change_password(user, context)"
            in signature
        )

        # A colon missing on line 1: the server's error, at its line; nothing stored.
        replace_code(browser, "def post_change_password(user, context)", "pass")
        browser.find_element(By.XPATH, "//button[text()='Save']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert "line 1" in alert.text
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-lintRange-error"))
        with server.api() as api:
            assert api.get(f"/hooks/{hook['id']}").json()["version"] == 1

        replace_code(
            browser,
            "def post_change_password(user, context):",
            "print('<script>alert(1)</script>')",
        )
        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        console = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report .console"))
        assert console.text.startswith("<script>alert(1)</script>")  # shown as text, never run
        browser.find_element(By.XPATH, "//button[text()='Save']").click()
        wait(
            browser, lambda b: "version 2" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        with server.api() as api:
            stored = api.get(f"/hooks/{hook['id']}").json()
        assert stored["version"] == 2
        assert "alert(1)" in stored["script"]
        assert browser.find_elements(By.CSS_SELECTOR, ".cm-lintRange-error") == []
        # An exception is marked at the hook's own line of the traceback.
        replace_code(browser, "def post_change_password(user, context):", "raise ValueError('no')")
        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        report = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report pre.error"))
        assert "ValueError: no" in report.text
        marked = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-lintRange-error"))
        assert "raise" in marked.text
        # The editor's own style sheets carry the page's nonce: the policy blocked nothing.
        blocked = [entry for entry in browser.get_log("browser") if entry["source"] == "security"]
        assert blocked == []


def test_secrets_are_written_never_shown_and_completed_in_the_editor(
    server: Server, hook: dict[str, Any]
) -> None:
    with chromium() as browser:
        signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
        content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))

        wait(browser, lambda b: b.find_element(By.NAME, "secret_name")).send_keys("API_TOKEN")
        browser.find_element(By.NAME, "secret_value").send_keys("s3cret-value-42")
        browser.find_element(By.XPATH, "//button[text()='Set']").click()
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-secret="API_TOKEN"]'))
        assert browser.find_element(By.NAME, "secret_value").get_attribute("value") == ""
        assert "s3cret-value-42" not in browser.page_source
        with server.api() as api:
            assert list(api.get(f"/hooks/{hook['id']}/secrets").json()) == ["API_TOKEN"]

        # context["secrets"][" completes the hook's secret names.
        content.click()
        content.send_keys(Keys.CONTROL, Keys.END)
        content.send_keys(Keys.ENTER)
        browser.execute_cdp_cmd("Input.insertText", {"text": 'print(context["secrets"]["AP'})
        tooltip = wait(
            browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-tooltip-autocomplete")
        )
        assert "API_TOKEN" in tooltip.text

        browser.find_element(By.XPATH, "//button[text()='Delete']").click()
        browser.switch_to.alert.accept()
        wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "[data-secret]") == [])
        with server.api() as api:
            assert api.get(f"/hooks/{hook['id']}/secrets").json() == {}


def hooks_named(server: Server, names: list[str]) -> dict[str, dict[str, Any]]:
    with server.api() as api:
        response = api.get("/hooks", params={"per_page": 100})
    assert response.status_code == 200, response.text
    found = response.json()
    return {hook["name"]: hook for hook in found if hook["name"] in names}


def test_create_from_the_template_reorder_enable_only_one_and_delete(server: Server) -> None:
    first, second = unique("made"), unique("made")
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/hooks")
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
        Select(form.find_element(By.NAME, "point")).select_by_visible_text("post-user-registration")
        form.find_element(By.NAME, "hook_name").send_keys("bad name <b>")
        form.find_element(By.XPATH, ".//button[text()='Create hook']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook .error"))
        assert "name" in alert.text  # the server's message, as text
        assert browser.find_elements(By.CSS_SELECTOR, "form.create-hook b") == []

        for name in (first, second):
            browser.get(server.url + "/dashboard#/hooks")
            form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
            Select(form.find_element(By.NAME, "point")).select_by_visible_text(
                "post-user-registration"
            )
            form.find_element(By.NAME, "hook_name").clear()
            form.find_element(By.NAME, "hook_name").send_keys(name)
            form.find_element(By.XPATH, ".//button[text()='Create hook']").click()
            content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
            assert "def post_user_registration(user, context):" in content.text
        made = hooks_named(server, [first, second])
        assert made[first]["script"] == made[second]["script"]
        assert not made[first]["enabled"]

        browser.get(server.url + "/dashboard#/hooks")
        row = f'[data-point="post-user-registration"] [data-hook="{second}"]'
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, row))
        browser.find_element(By.CSS_SELECTOR, f'{row} button[title="run earlier"]').click()
        wait(
            browser,
            lambda _: (
                (hooks := hooks_named(server, [first, second]))[second]["order"]
                < hooks[first]["order"]
            ),
        )
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, row))
        browser.find_element(By.CSS_SELECTOR, f'[data-hook="{first}"] input[type=checkbox]').click()
        wait(browser, lambda _: hooks_named(server, [first])[first]["enabled"])
        browser.find_element(
            By.XPATH, f'//tr[@data-hook="{second}"]//button[text()="Enable only this"]'
        ).click()
        wait(
            browser,
            lambda _: (
                [h["enabled"] for h in hooks_named(server, [first, second]).values()].count(True)
                == 1
                and hooks_named(server, [second])[second]["enabled"]
            ),
        )
        for name in (first, second):
            button = f'//tr[@data-hook="{name}"]//button[text()="Delete"]'
            wait(browser, lambda b, button=button: b.find_element(By.XPATH, button)).click()
            browser.switch_to.alert.accept()
            wait(browser, lambda _, name=name: hooks_named(server, [name]) == {})


def test_versions_show_their_diff_and_roll_back(server: Server, hook: dict[str, Any]) -> None:
    with server.api() as api:
        changed = NOTIFY.replace("    pass", "    print('second')")
        assert api.patch(f"/hooks/{hook['id']}", json={"script": changed}).status_code == 200
    with chromium() as browser:
        signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
        row = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-version="1"]'))
        assert "deployed" in browser.find_element(By.CSS_SELECTOR, '[data-version="2"]').text
        row.find_element(By.XPATH, ".//button[text()='Diff']").click()
        diff = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "pre.diff"))
        assert "- " + "    print('second')" in diff.text
        assert "+ " + "    pass" in diff.text
        row.find_element(By.XPATH, ".//button[text()='Deploy']").click()
        wait(
            browser, lambda b: "version 1" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        with server.api() as api:
            assert api.get(f"/hooks/{hook['id']}").json()["version"] == 1
        content = browser.find_element(By.CSS_SELECTOR, ".cm-content")
        assert "print('second')" not in content.text  # the editor shows the deployed code


PRINTER = """
def credentials_exchange(client, scope, audience, context):
    print("<img src=x onerror=alert(1)>", client["id"])
"""


def test_the_live_logs_panel_shows_a_production_invocation(server: Server) -> None:
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("live"),
                "script": PRINTER,
                "triggerId": "credentials-exchange",
                "enabled": True,
            },
        )
        assert created.status_code == 201, created.text
    hook = created.json()
    try:
        machine = create_machine(server)
        with chromium() as browser:
            signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs[data-live=true]"))
            issued = server.token(
                machine.client_id, machine.client_secret, audience=machine.audience
            )
            assert issued.status_code == 200, issued.text
            entry = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs .invocation.ok"))
            assert f"<img src=x onerror=alert(1)> {machine.client_id}" in entry.text
            assert browser.find_elements(By.CSS_SELECTOR, ".logs img") == []  # text, not HTML
            # Paused, new invocations wait in a buffer; resumed, they show.
            browser.find_element(By.XPATH, "//button[text()='Pause']").click()
            server.token(machine.client_id, machine.client_secret, audience=machine.audience)
            wait(
                browser,
                lambda b: "1 waiting" in b.find_element(By.CSS_SELECTOR, ".logs button").text,
            )
            assert len(browser.find_elements(By.CSS_SELECTOR, ".logs .invocation")) == 1
            browser.find_element(By.CSS_SELECTOR, ".logs button").click()
            wait(
                browser,
                lambda b: len(b.find_elements(By.CSS_SELECTOR, ".logs .invocation.ok")) == 2,
            )
    finally:
        with server.api() as api:  # other modules' tokens must not meet this hook
            api.delete(f"/hooks/{hook['id']}")


def test_set_up_an_api_a_client_and_a_grant_then_find_a_user(server: Server) -> None:
    audience = f"https://{unique('api')}.example.com/"
    api_name, client_name = unique("api"), unique("client")
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/apis")
        wait(browser, lambda b: b.find_element(By.NAME, "api_name")).send_keys(api_name)
        browser.find_element(By.NAME, "identifier").send_keys(audience)
        browser.find_element(By.NAME, "scopes").send_keys("read:orders write:orders")
        browser.find_element(By.XPATH, "//button[text()='Create API']").click()
        wait(browser, lambda b: audience in b.find_element(By.CSS_SELECTOR, "table.list").text)

        browser.get(server.url + "/dashboard#/clients")
        wait(browser, lambda b: b.find_element(By.NAME, "client_name")).send_keys(client_name)
        browser.find_element(By.XPATH, "//button[text()='Create client']").click()
        notice = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".notice"))
        client_id = notice.find_element(By.TAG_NAME, "code").text
        secret = notice.find_element(By.CSS_SELECTOR, "code.secret").text

        browser.get(server.url + "/dashboard#/grants")
        wait(browser, lambda b: b.find_element(By.NAME, "grant_client_id")).send_keys(client_id)
        browser.find_element(By.NAME, "grant_audience").send_keys(audience)
        browser.find_element(By.NAME, "grant_scopes").send_keys("read:orders")
        browser.find_element(By.XPATH, "//button[text()='Grant']").click()
        wait(browser, lambda b: client_id in b.find_element(By.CSS_SELECTOR, "table.list").text)
        issued = server.token(client_id, secret, audience=audience)
        assert issued.status_code == 200, issued.text
        assert issued.json()["scope"] == "read:orders"

        # A user whose metadata holds markup: found, and shown as text.
        with server.api() as api:
            email = f"{unique('ada')}@example.com"
            made = api.post(
                "/users",
                json={
                    "email": email,
                    "password": "Correct-Horse-42-battery",
                    "user_metadata": {"note": "<script>alert(1)</script>"},
                },
            )
            assert made.status_code == 201, made.text
        browser.get(server.url + "/dashboard#/users")
        wait(browser, lambda b: b.find_element(By.NAME, "user_search")).send_keys(email[:12])
        browser.find_element(By.XPATH, "//button[text()='Search']").click()
        wait(browser, lambda b: email in b.find_element(By.CSS_SELECTOR, "table.list").text)
        assert (
            "<script>alert(1)</script>" in browser.find_element(By.CSS_SELECTOR, "table.list").text
        )
        assert browser.find_elements(By.CSS_SELECTOR, "table.list script") == []


def test_add_an_admin_user_who_signs_in_with_an_email(server: Server) -> None:
    email = f"{unique('ops')}@example.com"
    password = "Correct-Horse-42-battery"
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/admins")
        wait(browser, lambda b: b.find_element(By.NAME, "admin_email")).send_keys(email)
        browser.find_element(By.NAME, "admin_password").send_keys("short")
        browser.find_element(By.NAME, "admin_scopes").send_keys("read:hooks read:logs")
        browser.find_element(By.XPATH, "//button[text()='Add admin']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert "12 characters" in alert.text  # the server's message, inline
        browser.find_element(By.NAME, "admin_password").clear()
        browser.find_element(By.NAME, "admin_password").send_keys(password)
        browser.find_element(By.XPATH, "//button[text()='Add admin']").click()
        wait(browser, lambda b: email in b.find_element(By.CSS_SELECTOR, "table.list").text)
        browser.find_element(By.XPATH, "//button[text()='Sign out']").click()

        switch = "//button[text()='Sign in with an email instead']"
        wait(browser, lambda b: b.find_element(By.XPATH, switch)).click()
        wait(browser, lambda b: b.find_element(By.NAME, "email")).send_keys(email)
        browser.find_element(By.NAME, "password").send_keys("wrong password")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert alert.text == "wrong email or password"
        browser.find_element(By.NAME, "password").clear()
        browser.find_element(By.NAME, "password").send_keys(password)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        who = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "header .who"))
        assert who.text == email
        browser.find_element(By.LINK_TEXT, "Hooks").click()
        wait(
            browser,
            lambda b: b.find_element(By.CSS_SELECTOR, '[data-point="credentials-exchange"]'),
        )
        # It may read hooks, not admins: the page offers no Admins link, and the API
        # refuses the page if it is opened anyway.
        assert browser.find_elements(By.LINK_TEXT, "Admins") == []
        browser.get(server.url + "/dashboard#/admins")
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert "read:admins" in alert.text


def test_the_whole_story_of_a_hook(server: Server) -> None:
    """Sign in, create a credentials-exchange hook from its template, add a secret,
    run it, save, enable it, see a client's token request in the live logs, replay
    that production event, and roll back."""
    name = unique("story")
    machine = create_machine(server)
    try:
        with chromium() as browser:
            signed_in(browser, server, "/dashboard#/hooks")
            form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
            form.find_element(By.NAME, "hook_name").send_keys(name)
            form.find_element(By.XPATH, ".//button[text()='Create hook']").click()
            content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
            assert "def credentials_exchange(client, scope, audience, context):" in content.text

            wait(browser, lambda b: b.find_element(By.NAME, "secret_name")).send_keys("TIER")
            browser.find_element(By.NAME, "secret_value").send_keys("platinum-tier")
            browser.find_element(By.XPATH, "//button[text()='Set']").click()
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-secret="TIER"]'))

            replace_code(
                browser,
                "def credentials_exchange(client, scope, audience, context):",
                'print("tier", context["secrets"]["TIER"], client["id"])',
                'return {"https://example.com/tier": "gold"}',
            )
            browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
            console = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report .console"))
            assert console.text.startswith("tier *** ")  # the secret, redacted
            browser.find_element(By.XPATH, "//button[text()='Save']").click()
            wait(
                browser,
                lambda b: "version 2" in b.find_element(By.CSS_SELECTOR, "[role=status]").text,
            )

            hook = hooks_named(server, [name])[name]
            with server.api() as api:  # capture production events, for the replay below
                assert api.patch(f"/hooks/{hook['id']}", json={"capture_events": True}).is_success
            browser.get(server.url + "/dashboard#/hooks")
            row = f'[data-hook="{name}"] input[type=checkbox]'
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, row)).click()
            wait(browser, lambda _: hooks_named(server, [name])[name]["enabled"])

            browser.get(server.url + f"/dashboard#/hooks/{hook['id']}")
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs[data-live=true]"))
            issued = server.token(
                machine.client_id, machine.client_secret, audience=machine.audience
            )
            assert issued.status_code == 200, issued.text
            entry = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs .invocation.ok"))
            assert f"tier *** {machine.client_id}" in entry.text

            browser.refresh()  # the runner lists the new production invocation
            choice = wait(
                browser, lambda b: b.find_element(By.CSS_SELECTOR, "select[aria-label=replay]")
            )
            wait(browser, lambda _: len(Select(choice).options) == 2)
            Select(choice).select_by_index(1)
            browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
            console = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report .console"))
            assert console.text.startswith(f"tier *** {machine.client_id}")  # that very event

            rollback = '[data-version="1"] button:nth-of-type(2)'
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, rollback)).click()
            wait(browser, lambda _: hooks_named(server, [name])[name]["version"] == 1)
    finally:
        with server.api() as api:  # other modules' tokens must not meet this hook
            for found in hooks_named(server, [name]).values():
                api.delete(f"/hooks/{found['id']}")
