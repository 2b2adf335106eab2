"""Take the dashboard screenshots in docs/images/ (for the README).

Starts `authhooks serve` in a scratch data dir, creates a few hooks and a
client through the management API, signs in with headless Chromium, runs a
hook and makes a token request, and saves the hooks page and a hook's editor
with its runner and live logs.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
TIER = '''from authhooks.hook import InvalidScopeError


def credentials_exchange(client, scope, audience, context):
    """Adds the client's tier; admin scopes need the gold tier."""
    tier = client["metadata"].get("tier", "free")
    print("tier", tier, "for", client["name"])
    if "admin" in scope and tier != "gold":
        raise InvalidScopeError("admin needs the gold tier")
    return {"https://example.com/tier": tier}
'''
WELCOME = """def post_user_registration(user, context):
    print("welcome", user["email"])
"""


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "AUTHHOOKS_DATA_DIR": data_dir, "AUTHHOOKS_PORT": str(port)}
        server = subprocess.Popen(
            [sys.executable, "-m", "authhooks", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(url)
            admin = json.loads((Path(data_dir) / "bootstrap-admin.json").read_text())
            hook_id, machine = _demo_data(url, admin)
            _shoot(url, admin, hook_id, machine)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"screenshots in {IMAGES}")


def _wait_ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def _demo_data(url: str, admin: dict[str, str]) -> tuple[str, dict[str, str]]:
    token = httpx.post(
        url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": admin["client_id"],
            "client_secret": admin["client_secret"],
            "audience": admin["audience"],
        },
    ).json()["access_token"]
    with httpx.Client(
        base_url=url + "/api/v2", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        audience = "https://orders.example.com/"
        api.post(
            "/resource-servers",
            json={"name": "Orders", "identifier": audience, "scopes": [{"value": "read:orders"}]},
        )
        client = api.post(
            "/clients", json={"name": "billing-worker", "client_metadata": {"tier": "gold"}}
        ).json()
        api.post(
            "/client-grants",
            json={"client_id": client["client_id"], "audience": audience, "scope": ["read:orders"]},
        )
        hook = api.post(
            "/hooks",
            json={
                "name": "add-tier",
                "script": TIER,
                "triggerId": "credentials-exchange",
                "enabled": True,
            },
        ).json()
        welcome = {"name": "welcome-slack", "script": WELCOME, "enabled": True}
        api.post("/hooks", json={**welcome, "triggerId": "post-user-registration"})
        api.post(f"/hooks/{hook['id']}/secrets", json={"CRM_TOKEN": "crm-secret-value"})
    machine = {"client_id": client["client_id"], "secret": client["client_secret"],
               "audience": audience}  # fmt: skip
    return hook["id"], machine


def _shoot(url: str, admin: dict[str, str], hook_id: str, machine: dict[str, str]) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,1500"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(browser, 15)
    try:
        browser.get(url + "/dashboard#/hooks")
        switch = "//button[text()='Sign in with a client ID and secret']"
        wait.until(lambda b: b.find_element(By.XPATH, switch)).click()
        wait.until(lambda b: b.find_element(By.NAME, "client_id")).send_keys(admin["client_id"])
        browser.find_element(By.NAME, "client_secret").send_keys(admin["client_secret"])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, '[data-hook="add-tier"]'))
        IMAGES.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(IMAGES / "dashboard-hooks.png"))

        browser.get(url + f"/dashboard#/hooks/{hook_id}")
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, ".logs .empty"))
        time.sleep(1)
        httpx.post(
            url + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": machine["client_id"],
                "client_secret": machine["secret"],
                "audience": machine["audience"],
            },
        )
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, ".logs .invocation.ok"))
        browser.find_element(By.XPATH, "//button[text()='Run unsaved code']").click()
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, ".report"))
        browser.save_screenshot(str(IMAGES / "dashboard-editor.png"))
    finally:
        browser.quit()


if __name__ == "__main__":
    main()
