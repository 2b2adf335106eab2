"""The Points pages in a real browser: a point declared through the page (the
server's refusal shown as it says it), listed and marked beside the built-in
ones, a hook made on it, completed from its hints and run on its sample event,
its description changed, and the point deleted with its hook after a
confirmation that counts them; a built-in point shown read-only; a scheduled hook
made from the schedule point's page."""

from __future__ import annotations

import json

from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, unique
from tests.dashboard.browser import chromium, offered, page_errors, replace_code, signed_in, wait

EVENT_SCHEMA = {
    "type": "object",
    "required": ["sku", "quantity"],
    "additionalProperties": False,
    "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}},
}
RESULT_SCHEMA = {"type": "object", "properties": {"price": {"type": "number"}}}
SAMPLE = {"sku": "A-1", "quantity": 3}


def set_json(browser: Chrome, form: str, field: str, value: object) -> None:
    """Replace a JSON field's text (a CodeMirror editor) with ``value``."""
    selector = f'{form} .json-field[data-field="{field}"] .cm-content'
    content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, selector))
    content.click()
    content.send_keys(Keys.CONTROL, "a")
    content.send_keys(Keys.DELETE)
    browser.execute_cdp_cmd("Input.insertText", {"text": json.dumps(value)})


def row(browser: Chrome, point_id: str) -> WebElement:
    return wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-point="{point_id}"]'))


def status_text(browser: Chrome, scope: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, f"{scope} [role=status]")
    return found[0].text if found else ""


def test_declare_a_point_write_a_hook_on_it_edit_and_delete_it(server: Server) -> None:
    point_id = unique("price-quote")
    function = point_id.replace("-", "_")
    name = unique("quote")
    ticking = unique("tick")
    bad = {
        "id": point_id,
        "description": "Quote a price",
        "blocking": True,
        "event_schema": EVENT_SCHEMA,
        "result_schema": {"type": "array"},
        "sample_event": SAMPLE,
    }
    with server.api() as api:  # what the server says of the bad spec the page will send
        refused = api.post("/points", json=bad)
    assert refused.status_code == 400, refused.text
    try:
        with chromium() as browser:
            signed_in(browser, server, "/dashboard#/points")
            # Built-in points are listed and marked so; one's page is read-only.
            built_in = row(browser, "credentials-exchange")
            assert built_in.find_element(By.CSS_SELECTOR, ".badge").text == "built-in"
            assert "blocking" in built_in.text

            form = "form.declare-point"
            browser.find_element(By.CSS_SELECTOR, f"{form} [name=point_id]").send_keys(point_id)
            browser.find_element(By.CSS_SELECTOR, f"{form} [name=description]").send_keys(
                "Quote a price"
            )
            set_json(browser, form, "event_schema", EVENT_SCHEMA)
            set_json(browser, form, "result_schema", {"type": "array"})
            set_json(browser, form, "sample_event", SAMPLE)
            browser.find_element(By.XPATH, "//button[text()='Declare point']").click()
            alert = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f"{form} .error"))
            assert alert.text == refused.json()["message"]  # as the server says it

            set_json(browser, form, "result_schema", RESULT_SCHEMA)
            browser.find_element(By.XPATH, "//button[text()='Declare point']").click()
            wait(browser, lambda b: f"Point {point_id} declared" in status_text(b, ".points"))
            declared = row(browser, point_id)
            assert declared.find_element(By.CSS_SELECTOR, ".badge").text == "declared"
            assert declared.find_element(By.CSS_SELECTOR, ".kind").text == "blocking"
            assert declared.find_element(By.CSS_SELECTOR, ".hooks-count").text == "0 hooks"

            # The Hooks page offers it (the list was asked for again), under its own heading.
            browser.find_element(By.LINK_TEXT, "Hooks").click()
            picker = wait(browser, lambda b: Select(b.find_element(By.NAME, "point")))
            assert point_id in [option.text for option in picker.options]
            section = browser.find_element(By.CSS_SELECTOR, f'.point[data-point="{point_id}"]')
            assert "Quote a price" in section.text

            # Its page: a new hook on it, from its template, in the editor.
            section.find_element(By.CSS_SELECTOR, "h2 a").click()
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.edit-point"))
            browser.find_element(By.CSS_SELECTOR, "form.create-hook [name=hook_name]").send_keys(
                name
            )
            browser.find_element(By.XPATH, "//button[text()='Create hook']").click()
            code = ".editor-page .editor .cm-content"  # not the point page's JSON fields
            content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, code))
            wait(browser, lambda b: f"def {function}(event, context):" in content.text)
            event = browser.find_element(By.CSS_SELECTOR, "textarea.event").get_attribute("value")
            assert json.loads(event or "") == SAMPLE  # the runner's event is the point's sample

            # Completion offers the event's keys, from the point's hints.
            content.send_keys(Keys.CONTROL, Keys.END)
            browser.execute_cdp_cmd("Input.insertText", {"text": "    x = event"})
            content.send_keys(".")
            keys = offered(browser, lambda found: "quantity" in found)
            if "quantity" not in keys:  # the "." landed before the editor listened
                content.send_keys(Keys.CONTROL, " ")
                keys = offered(browser, lambda found: "quantity" in found)
            assert {"sku", "quantity"} <= set(keys), keys
            content.send_keys(Keys.ESCAPE)

            replace_code(
                browser,
                f"def {function}(event, context):",
                'print("quote", event["sku"])',
                'return {"price": event["quantity"] * 2.5}',
            )
            browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
            report = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".report"))
            assert report.get_attribute("data-outcome") == "ok", report.text
            assert report.find_element(By.CSS_SELECTOR, ".console").text.startswith("quote A-1\n")
            result = json.loads(report.find_element(By.CSS_SELECTOR, ".result").text)
            assert result == {"result": {"price": 7.5}}

            # An application invokes the point, and the hook keeps the event it got.
            with server.api() as api:
                hook = api.get("/hooks", params={"triggerId": point_id}).json()[0]
                changed = api.patch(
                    f"/hooks/{hook['id']}", json={"enabled": True, "capture_events": True}
                )
                assert changed.status_code == 200, changed.text
                invoked = api.post(
                    f"/points/{point_id}/invoke", json={"event": {"sku": "LONG-SKU", "quantity": 1}}
                )
                assert invoked.status_code == 200, invoked.text

            # Back on the point's page: its hook listed, its description and event schema
            # changed; the captured event the new schema refuses is named.
            browser.find_element(By.CSS_SELECTOR, ".signature a.point-link").click()
            wait(browser, lambda b: b.current_url.endswith(f"#/points/{point_id}"))
            wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-hook="{name}"]'))
            field = browser.find_element(By.CSS_SELECTOR, "form.edit-point [name=description]")
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys("Quote a price, in euros")
            short_skus = json.loads(json.dumps(EVENT_SCHEMA))
            short_skus["properties"]["sku"]["maxLength"] = 3
            set_json(browser, "form.edit-point", "event_schema", short_skus)
            browser.find_element(By.XPATH, "//button[text()='Save point']").click()
            saved = "Saved: description, event_schema."
            wait(browser, lambda b: status_text(b, ".point-page") == saved)
            heading = browser.find_element(By.CSS_SELECTOR, ".point-page > .description")
            assert heading.text == "Quote a price, in euros"
            warning = browser.find_element(By.CSS_SELECTOR, ".mismatches")
            assert "refuses 1 captured event" in warning.text
            assert f"of {name}: event at /sku" in warning.text

            # Deleting says how many hooks go with it; dismissed, nothing goes.
            browser.find_element(By.XPATH, "//button[text()='Delete point']").click()
            confirmation = wait(browser, expected_conditions.alert_is_present())
            assert f"its 1 hook ({name})" in confirmation.text
            confirmation.dismiss()
            browser.find_element(By.XPATH, "//button[text()='Delete point']").click()
            wait(browser, expected_conditions.alert_is_present()).accept()
            wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "table.points-list"))
            assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-point="{point_id}"]') == []

            # A built-in point's page: its schemas to read, nothing to change or delete.
            row(browser, "credentials-exchange").find_element(By.CSS_SELECTOR, ".id a").click()
            schema = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "pre.json"))
            assert json.loads(schema.text)["type"] == "object"
            assert "read-only" in browser.find_element(By.CSS_SELECTOR, ".read-only").text
            assert browser.find_elements(By.CSS_SELECTOR, "form.edit-point") == []
            assert browser.find_elements(By.XPATH, "//button[text()='Delete point']") == []

            # The schedule point's page makes a hook with its cron expression, and the
            # editor shows the schedule beside the code.
            browser.find_element(By.LINK_TEXT, "Points").click()
            row(browser, "schedule").find_element(By.CSS_SELECTOR, ".id a").click()
            form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.create-hook"))
            cron = form.find_element(By.NAME, "cron")
            cron.clear()
            cron.send_keys("0 4 * * *")
            form.find_element(By.NAME, "hook_name").send_keys(ticking)
            form.find_element(By.XPATH, ".//button[text()='Create hook']").click()
            panel = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "aside.schedule"))
            assert panel.find_element(By.NAME, "cron").get_attribute("value") == "0 4 * * *"
            assert page_errors(browser) == []
        with server.api() as api:
            assert api.get(f"/points/{point_id}").status_code == 404
            hooks = api.get("/hooks", params={"triggerId": point_id}).json()
            assert hooks == []
    finally:
        with server.api() as api:  # a failure above leaves nothing behind
            api.delete(f"/points/{point_id}", params={"force": "true"})
            for hook in api.get("/hooks", params={"triggerId": "schedule"}).json():
                if hook["name"] == ticking:
                    api.delete(f"/hooks/{hook['id']}")
