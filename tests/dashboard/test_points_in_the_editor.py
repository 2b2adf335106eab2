"""The dashboard writes hooks from what GET /api/v2/points says: the points and
their descriptions, both calling conventions with their templates, completion
from the convention's hints, the runner's sample event; and an editor left
behind is destroyed."""

from __future__ import annotations

import json
from typing import Any

from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, offered, page_errors, signed_in, wait


def listed_points(server: Server) -> list[dict[str, Any]]:
    with server.api() as api:
        response = api.get("/points")
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()
    return points


def test_a_new_hook_in_the_actions_convention_completes_and_runs(server: Server) -> None:
    points = listed_points(server)
    exchange = next(point for point in points if point["id"] == "credentials-exchange")
    hooks, actions = exchange["conventions"]["hooks"], exchange["conventions"]["actions"]
    name = unique("actions")
    with chromium() as browser:
        signed_in(browser, server, "/dashboard#/hooks")
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
        picker = Select(form.find_element(By.NAME, "point"))
        assert [option.text for option in picker.options] == [point["id"] for point in points]
        for point in points:  # each point's section, as the API describes it
            section = browser.find_element(By.CSS_SELECTOR, f'[data-point="{point["id"]}"]')
            assert point["description"] in section.text
            assert ("blocking" if point["blocking"] else "delivered later") in section.text

        # Both conventions are offered, each with its signature.
        picker.select_by_visible_text("credentials-exchange")
        signature = form.find_element(By.CSS_SELECTOR, "code.signature")
        assert signature.text == hooks["signature"]
        form.find_element(By.CSS_SELECTOR, "input[name=convention][value=actions]").click()
        assert signature.text == actions["signature"]
        form.find_element(By.NAME, "hook_name").send_keys(name)
        form.find_element(By.XPATH, ".//button[text()='Create hook']").click()
        content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
        assert f"{actions['signature']}:" in content.text
        heading = browser.find_element(By.CSS_SELECTOR, ".signature").text
        assert f"credentials-exchange (Actions, Python): {actions['signature']}" in heading
        event = browser.find_element(By.CSS_SELECTOR, "textarea.event").get_attribute("value")
        assert json.loads(event or "") == exchange["sample_event"]
        # The editor offers the other convention's template too; undo brings the code back.
        browser.find_element(
            By.CSS_SELECTOR, "button[data-template=hooks][data-language=python]"
        ).click()
        wait(browser, lambda b: f"{hooks['signature']}:" in code_of(b))
        wait(
            browser,
            lambda b: "(Hooks, Python)" in b.find_element(By.CSS_SELECTOR, ".signature").text,
        )
        content.send_keys(Keys.CONTROL, "z")
        wait(browser, lambda b: f"{actions['signature']}:" in code_of(b))

        # ``event.`` offers the Actions event's keys (from the API's hints), and
        # picking one writes the subscript Python reads.
        content.send_keys(Keys.CONTROL, Keys.END)  # the empty line after the template's last
        browser.execute_cdp_cmd("Input.insertText", {"text": '    print("client", event'})
        content.send_keys(".")
        keys = offered(browser, lambda found: any(key.startswith("client") for key in found))
        assert any(key.startswith("client") for key in keys), keys
        assert not any(key.startswith("scope") for key in keys)  # a Hooks argument
        content.send_keys("cli")
        wait(browser, lambda b: "client" in selected(b))
        content.send_keys(Keys.ENTER)
        browser.execute_cdp_cmd("Input.insertText", {"text": '["client_id"])'})
        wait(browser, lambda b: 'print("client", event["client"]["client_id"])' in code_of(b))
        # ``api.access.`` offers the method the API lists.
        content.send_keys(Keys.ENTER)
        browser.execute_cdp_cmd("Input.insertText", {"text": "api.access"})
        content.send_keys(".")
        if not offered(browser, lambda found: "deny" in found):
            # On a busy machine the "." may land before the editor listens for it:
            # ask for the completions as a person would (Ctrl+Space).
            content.send_keys(Keys.CONTROL, " ")
        wait(browser, lambda b: "deny" in selected(b))
        content.send_keys(Keys.ESCAPE)
        content.send_keys(Keys.BACKSPACE * len("api.access."))

        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        report = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report"))
        assert report.get_attribute("data-outcome") == "ok", report.text
        client_id = exchange["sample_event"]["client"]["id"]
        console = report.find_element(By.CSS_SELECTOR, ".console").text
        assert console.startswith(f"client {client_id}\n")
        result = json.loads(report.find_element(By.CSS_SELECTOR, ".result").text)
        assert result["claims"]["https://example.com/tier"] == "gold"
        assert page_errors(browser) == []
    with server.api() as api:
        found = api.get("/hooks", params={"per_page": 100}).json()
        made = next(hook for hook in found if hook["name"] == name)
        assert made["script"] == actions["template"]
        assert not made["enabled"]
        assert api.delete(f"/hooks/{made['id']}").status_code == 204


def selected(browser: Chrome) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, ".cm-tooltip-autocomplete li[aria-selected]")
    return found[0].text if found else ""


def code_of(browser: Chrome) -> str:
    """The code of every editor on the page (there should be one at most)."""
    return str(
        browser.execute_script(
            "return [...document.querySelectorAll('.cm-content')].map((e) => e.innerText).join()"
        )
    )


def window_listeners(browser: Chrome, kind: str) -> int:
    """How many ``kind`` listeners the window holds: each live editor view adds its own."""
    window = browser.execute_cdp_cmd("Runtime.evaluate", {"expression": "window"})
    found = browser.execute_cdp_cmd(
        "DOMDebugger.getEventListeners", {"objectId": window["result"]["objectId"]}
    )
    return sum(1 for listener in found["listeners"] if listener["type"] == kind)


def test_leaving_the_editor_destroys_its_view(server: Server) -> None:
    ids = []
    with server.api() as api:
        for word in ("first", "second", "third"):
            created = api.post(
                "/hooks",
                json={
                    "name": unique(word),
                    "triggerId": "post-change-password",
                    "script": f"def post_change_password(user, context):\n    print('{word}')\n",
                },
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    go = "location.hash = '#/hooks/' + arguments[0]"
    try:
        with chromium() as browser:
            signed_in(browser, server, "/dashboard#/hooks")
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
            before = window_listeners(browser, "resize")

            browser.execute_script(go, ids[0])
            wait(browser, lambda b: "print('first')" in code_of(b))
            one = window_listeners(browser, "resize")
            assert one > before
            # To another hook, and on to a third before the second has loaded: one view.
            browser.execute_script(
                go + "; setTimeout(() => { location.hash = '#/hooks/' + arguments[1]; }, 5)",
                ids[1],
                ids[2],
            )
            wait(browser, lambda b: "print('third')" in code_of(b))
            assert len(browser.find_elements(By.CSS_SELECTOR, ".cm-editor")) == 1
            assert window_listeners(browser, "resize") == one

            browser.find_element(By.LINK_TEXT, "Hooks").click()
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
            assert browser.find_elements(By.CSS_SELECTOR, ".cm-editor") == []
            assert window_listeners(browser, "resize") == before
            assert page_errors(browser) == []
    finally:
        with server.api() as api:
            for hook_id in ids:
                api.delete(f"/hooks/{hook_id}")
