"""The live logs panel of an admin whose access is taken away: it says why and
stops, rather than reopen the stream; the page's next request is refused, and
the page goes back to sign-in."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, page_errors, wait
from tests.dashboard.test_admins import PASSWORD, new_admin

QUIET = """
def credentials_exchange(client, scope, audience, context):
    return {}
"""


def test_the_live_logs_stop_and_say_why_when_the_admin_is_deleted(server: Server) -> None:
    admin = new_admin(server, ["read:hooks", "read:logs"])
    with server.api() as api:
        created = api.post(
            "/hooks",
            json={"name": unique("watched"), "script": QUIET, "triggerId": "credentials-exchange"},
        )
        assert created.status_code == 201, created.text
    with chromium() as browser:
        browser.get(server.url + f"/dashboard#/hooks/{created.json()['id']}")
        field = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.sign-in input"))
        if field.get_attribute("name") != "email":
            browser.find_element(
                By.XPATH, "//button[text()='Sign in with an email instead']"
            ).click()
        wait(browser, lambda b: b.find_element(By.NAME, "email")).send_keys(admin["email"])
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs .empty"))
        # Deleted once the stream is open (before, the stream's own request is refused).
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs[data-live=true]"))
        with server.api() as api:
            assert api.delete(f"/admins/{admin['id']}").status_code == 204
        ended = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".logs .ended"))
        assert "admin no longer exists" in ended.text
        assert browser.find_elements(By.CSS_SELECTOR, ".logs .empty") == []
        assert browser.find_element(By.CSS_SELECTOR, ".logs .status").text == "stopped"

        # Its token still verifies, but the API refuses it now (401): sign-in, with
        # the page's place kept.
        browser.find_element(By.CSS_SELECTOR, ".editor-page a[href='#/hooks']").click()
        wait(browser, lambda b: b.find_element(By.NAME, "email"))
        assert browser.current_url.endswith("/dashboard#/hooks")
        assert page_errors(browser) == []
