"""The dashboard in a real browser: sign in, the hooks page, a switch that changes
the server, an ended session, sign out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, wait

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
