"""The management API's reference at /api/v2/docs: Swagger UI from this server's
own assets, under the dashboard's Content-Security-Policy, with no script or
style sheet from anywhere else, rendering every operation in a real browser."""

from __future__ import annotations

import re

import httpx
from selenium.webdriver.common.by import By

from tests.conftest import Server
from tests.dashboard.browser import chromium, wait

# Recorded before any script of the page runs: what the policy blocked.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_the_docs_page_loads_only_this_servers_assets(server: Server) -> None:
    page = httpx.get(server.url + "/api/v2/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    directives = {}
    for directive in policy.split(";"):
        name, _, value = directive.strip().partition(" ")
        directives[name] = value
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no CDN, no inline script
    assert "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"

    # Every script runs from a file of ours: none inline, none from another origin.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.DOTALL)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == ""
        assert re.search(r'\bsrc="/[^/]', attributes), attributes
    references = re.findall(r'\b(?:src|href)="([^"]*)"', page.text)
    assert references
    for reference in references:
        assert reference.startswith("/"), reference
        assert not reference.startswith("//"), reference
        asset = httpx.get(server.url + reference)
        assert asset.status_code == 200, reference
        assert asset.content


def test_swagger_ui_renders_the_operations_under_the_policy(server: Server) -> None:
    with chromium() as browser:
        browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS}
        )
        browser.get(server.url + "/api/v2/docs")
        wait(
            browser,
            lambda b: b.find_element(
                By.CSS_SELECTOR, '.opblock-summary-path[data-path="/api/v2/hooks"]'
            ),
            timeout=30,
        )
        operations = browser.find_elements(By.CSS_SELECTOR, ".opblock")
        assert len(operations) > 20
        assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith(
            "authhooks Management API"
        )
        # The style sheet applied: Swagger UI's own layout, not unstyled markup.
        wrapper = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .wrapper")
        assert wrapper.value_of_css_property("max-width") == "1460px"
        assert browser.execute_script("return window.violations") == []
