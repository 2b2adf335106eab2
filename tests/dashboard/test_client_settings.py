"""A client's browser sign-in settings in the dashboard: shown as the API has them,
edited and saved with one PATCH, and the server's refusal shown as it comes."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, page_errors, signed_in, wait


def test_a_clients_sign_in_settings_are_edited_and_saved(server: Server) -> None:
    with server.api() as api:
        created = api.post("/clients", json={"name": unique("web"), "app_type": "regular_web"})
        assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/clients")
        wait(browser, lambda b: b.find_element(By.LINK_TEXT, created.json()["name"])).click()
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.client-settings"))
        callbacks = form.find_element(By.NAME, "callbacks")
        callbacks.send_keys("https://app.example.com/callback\nhttps://app.example.com/other")
        form.find_element(By.NAME, "web_origins").send_keys("https://app.example.com")
        Select(form.find_element(By.NAME, "rotation_type")).select_by_visible_text("non-rotating")
        form.find_element(By.NAME, "is_first_party").click()
        form.find_element(By.XPATH, ".//button[text()='Save']").click()
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".client-settings .notice"))
        with server.api() as api:
            stored = api.get(f"/clients/{client_id}").json()
        assert stored["callbacks"] == [
            "https://app.example.com/callback",
            "https://app.example.com/other",
        ]
        assert stored["web_origins"] == ["https://app.example.com"]
        assert stored["refresh_token"]["rotation_type"] == "non-rotating"
        assert stored["is_first_party"] is False

        # A wildcard is refused by the server, and the page says why.
        callbacks.send_keys("\nhttps://*.example.com/callback")
        form.find_element(By.XPATH, ".//button[text()='Save']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".client-settings .error"))
        assert "wildcards" in alert.text
        assert page_errors(browser) == []
