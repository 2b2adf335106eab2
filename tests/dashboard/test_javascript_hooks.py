"""JavaScript hooks in the dashboard, in a real browser: one created in the Actions
convention is completed (``api.accessToken.setCustomClaim``), run, saved and
rolled back; a Python hook turns into a JavaScript one from a template, with the
Hooks convention's completion (``context.webtask.secrets.``)."""

from __future__ import annotations

from typing import Any

from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, unique
from tests.dashboard.browser import (
    chromium,
    offered,
    page_errors,
    replace_code,
    signed_in,
    wait,
)
from tests.dashboard.test_points_in_the_editor import code_of, listed_points, selected


def stored(server: Server, name: str) -> dict[str, Any]:
    with server.api() as api:
        found = api.get("/hooks", params={"per_page": 100}).json()
    (hook,) = [each for each in found if each["name"] == name]
    return hook  # type: ignore[no-any-return]


def test_a_javascript_actions_hook_is_completed_run_saved_and_rolled_back(server: Server) -> None:
    exchange = next(p for p in listed_points(server) if p["id"] == "credentials-exchange")
    actions = exchange["conventions"]["actions"]["javascript"]
    name = unique("js-actions")
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/hooks")
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
        Select(form.find_element(By.NAME, "point")).select_by_visible_text("credentials-exchange")
        form.find_element(By.CSS_SELECTOR, "input[name=language][value=node]").click()
        form.find_element(By.CSS_SELECTOR, "input[name=convention][value=actions]").click()
        assert form.find_element(By.CSS_SELECTOR, "code.signature").text == actions["signature"]
        form.find_element(By.NAME, "hook_name").send_keys(name)
        form.find_element(By.XPATH, ".//button[text()='Create hook']").click()

        content = wait(
            browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content[data-language]")
        )
        assert content.get_attribute("data-language") == "javascript"
        wait(browser, lambda b: actions["signature"] in code_of(b))
        heading = browser.find_element(By.CSS_SELECTOR, ".signature").text
        assert f"credentials-exchange (Actions, JavaScript): {actions['signature']}" in heading
        created = stored(server, name)
        assert created["runtime"] == "node"
        assert created["script"] == actions["template"]

        # ``api.`` offers the camelCase namespaces, and ``api.accessToken.`` the methods;
        # a pick is written as JavaScript reads it.
        content.send_keys(Keys.CONTROL, Keys.END)
        browser.execute_cdp_cmd("Input.insertText", {"text": "api"})
        content.send_keys(".")
        namespaces = offered(browser, lambda found: {"accessToken", "access"} <= set(found))
        assert {"accessToken", "access"} <= set(namespaces), namespaces
        assert "access_token" not in namespaces
        content.send_keys("accessT")
        wait(browser, lambda b: selected(b).startswith("accessToken"))
        content.send_keys(Keys.ENTER)
        content.send_keys(".")
        assert "setCustomClaim" in offered(browser, lambda found: "setCustomClaim" in found)
        content.send_keys("setC")
        wait(browser, lambda b: selected(b).startswith("setCustomClaim"))
        content.send_keys(Keys.ENTER)
        wait(browser, lambda b: "\napi.accessToken.setCustomClaim" in code_of(b))
        # ``event.`` offers the event's keys, as Auth0 names them.
        content.send_keys(Keys.ENTER)
        browser.execute_cdp_cmd("Input.insertText", {"text": "event.client"})
        content.send_keys(".")
        keys = offered(browser, lambda found: {"client_id", "metadata"} <= set(found))
        assert {"client_id", "metadata"} <= set(keys)
        content.send_keys(Keys.ESCAPE)

        replace_code(
            browser,
            "exports.onExecuteCredentialsExchange = async (event, api) => {",
            "console.log('client', event.client.client_id);",
            "api.accessToken.setCustomClaim('https://example.com/tier', 'js-' + "
            "event.client.metadata.tier);",
            "};",
        )
        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        report = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report"))
        assert report.get_attribute("data-outcome") == "ok", report.text
        client_id = exchange["sample_event"]["client"]["id"]
        assert f"client {client_id}" in report.find_element(By.CSS_SELECTOR, ".console").text
        assert '"https://example.com/tier": "js-gold"' in report.text

        browser.find_element(By.XPATH, "//button[text()='Save']").click()
        wait(
            browser, lambda b: "version 2" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        saved = stored(server, name)
        assert (saved["version"], saved["runtime"]) == (2, "node")
        assert "'js-' + event.client.metadata.tier" in saved["script"]

        # An exception is marked at the hook's own line of the stack.
        replace_code(
            browser,
            "exports.onExecuteCredentialsExchange = async (event, api) => {",
            "const tier = event.client.metadata.tier;",
            "throw new Error('no ' + tier);",
            "};",
        )
        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        error = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report pre.error"))
        assert "Error: no gold" in error.text
        marked = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-lintRange-error"))
        assert "throw" in marked.text
        # Code that does not parse is refused at its line, and nothing is stored.
        replace_code(
            browser,
            "exports.onExecuteCredentialsExchange = async (event, api) => {",
            "api.access.deny('invalid_request', 'no';",
            "};",
        )
        browser.find_element(By.XPATH, "//button[text()='Save']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
        assert "line 2" in alert.text, alert.text
        marked = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-lintRange-error"))
        assert "deny" in marked.text
        assert stored(server, name)["version"] == 2

        # Version 1 deployed again: the editor shows its code.
        row = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-version="1"]'))
        row.find_element(By.XPATH, ".//button[text()='Deploy']").click()
        wait(
            browser, lambda b: "version 1" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        wait(browser, lambda b: "const tier = event.client.metadata.tier || 'free';" in code_of(b))
        assert stored(server, name)["version"] == 1
        assert page_errors(browser) == []
    with server.api() as api:
        assert api.delete(f"/hooks/{created['id']}").status_code == 204


def test_a_python_hook_becomes_javascript_from_a_template(server: Server) -> None:
    pcp = next(p for p in listed_points(server) if p["id"] == "post-change-password")
    hooks = pcp["conventions"]["hooks"]["javascript"]
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={
                "name": unique("to-js"),
                "triggerId": "post-change-password",
                "script": "def post_change_password(user, context):\n    pass\n",
            },
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        added = api.post(f"/hooks/{hook['id']}/secrets", json={"SLACK_URL": "https://x.test/1"})
        assert added.status_code == 201, added.text
    with chromium() as browser:
        signed_in(browser, server, f"/dashboard#/hooks/{hook['id']}")
        content = wait(
            browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content[data-language]")
        )
        assert content.get_attribute("data-language") == "python"
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-secret="SLACK_URL"]'))

        browser.find_element(
            By.CSS_SELECTOR, "button[data-template=hooks][data-language=node]"
        ).click()
        wait(browser, lambda b: content.get_attribute("data-language") == "javascript")
        wait(browser, lambda b: hooks["signature"] in code_of(b))
        heading = browser.find_element(By.CSS_SELECTOR, ".signature").text
        assert f"post-change-password (Hooks, JavaScript): {hooks['signature']}" in heading

        # Auth0 Hooks read secrets from context.webtask.secrets: their names complete
        # (typed on a line of its own before the function's last).
        content.send_keys(Keys.CONTROL, Keys.END)
        content.send_keys(Keys.UP, Keys.HOME)
        browser.execute_cdp_cmd("Input.insertText", {"text": "console.log('to', context"})
        content.send_keys(".")
        assert "webtask" in offered(browser, lambda found: "webtask" in found)
        content.send_keys(Keys.ESCAPE)
        browser.execute_cdp_cmd("Input.insertText", {"text": "webtask.secrets"})
        content.send_keys(".")
        assert offered(browser, lambda found: found == ["SLACK_URL"]) == ["SLACK_URL"]
        content.send_keys(Keys.ENTER)
        browser.execute_cdp_cmd("Input.insertText", {"text": ");"})
        content.send_keys(Keys.ENTER)
        wait(
            browser, lambda b: "console.log('to', context.webtask.secrets.SLACK_URL);" in code_of(b)
        )

        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        report = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report"))
        assert report.get_attribute("data-outcome") == "ok", report.text
        browser.find_element(By.XPATH, "//button[text()='Save']").click()
        wait(
            browser, lambda b: "version 2" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        saved = stored(server, hook["name"])
        assert saved["runtime"] == "node"
        assert hooks["signature"] in saved["script"]
        assert "console.log('to', context.webtask.secrets.SLACK_URL);" in saved["script"]

        # And back: undo (as many times as it takes) brings the Python code, and its
        # highlighting, back.
        def undone(browser: Chrome) -> bool:
            content.send_keys(Keys.CONTROL, "z")
            return "def post_change_password" in code_of(browser)

        wait(browser, undone)
        wait(browser, lambda b: content.get_attribute("data-language") == "python")
        assert page_errors(browser) == []
    with server.api() as api:
        assert api.delete(f"/hooks/{hook['id']}").status_code == 204
