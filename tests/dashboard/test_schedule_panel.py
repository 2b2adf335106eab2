"""A scheduled hook in the dashboard, in a real browser: created from the point's
template with a cron expression, its next runs shown beside the editor, its
schedule changed there."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, page_errors, signed_in, wait
from tests.dashboard.test_javascript_hooks import stored


def test_a_scheduled_hook_shows_and_changes_its_schedule(server: Server) -> None:
    name = unique("dash-tick")
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/hooks")
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
        Select(form.find_element(By.NAME, "point")).select_by_visible_text("schedule")
        cron = form.find_element(By.NAME, "cron")
        cron.clear()
        cron.send_keys("0 4 * * *")
        form.find_element(By.NAME, "hook_name").send_keys(name)
        form.find_element(By.XPATH, ".//button[text()='Create hook']").click()

        panel = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "aside.schedule"))
        assert stored(server, name)["schedule"] == {
            "cron": "0 4 * * *",
            "timezone": "UTC",
            "catch_up": False,
        }
        # Created disabled: nothing to run yet.
        wait(browser, lambda b: "None while the hook is disabled" in panel.text)
        with server.api() as api:
            hook_id = stored(server, name)["id"]
            assert api.patch(f"/hooks/{hook_id}", json={"enabled": True}).status_code == 200
        browser.refresh()
        panel = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "aside.schedule"))
        runs = wait(
            browser, lambda b: b.find_elements(By.CSS_SELECTOR, "aside.schedule .next-runs li")
        )
        assert len(runs) == 5
        assert all(run.text.endswith("T04:00:00Z") for run in runs)

        field = panel.find_element(By.NAME, "timezone")
        field.clear()
        field.send_keys("Asia/Tokyo")
        panel.find_element(By.XPATH, ".//button[text()='Save schedule']").click()
        wait(browser, lambda b: stored(server, name)["schedule"]["timezone"] == "Asia/Tokyo")
        # 04:00 in Tokyo is 19:00 UTC the day before.
        wait(
            browser,
            lambda b: all(
                run.text.endswith("T19:00:00Z")
                for run in b.find_elements(By.CSS_SELECTOR, "aside.schedule .next-runs li")
            ),
        )

        field = panel.find_element(By.NAME, "cron")
        field.clear()
        field.send_keys("* * * * * * *")
        panel.find_element(By.XPATH, ".//button[text()='Save schedule']").click()
        alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "aside.schedule .error"))
        assert "has 7 fields" in alert.text
        assert stored(server, name)["schedule"]["cron"] == "0 4 * * *"
        assert not page_errors(browser)
    with server.api() as api:
        api.delete(f"/hooks/{stored(server, name)['id']}")
