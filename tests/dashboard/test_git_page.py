"""The Git pages in a real browser: a source added with its webhook secret shown
once, synced from a real repository (file://, allowed by the server's setting),
its deployments with their changes and errors, and the hooks it keeps read-only
in the editor, their versions naming their commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, run_server, unique
from tests.dashboard.browser import chromium, page_errors, signed_in, wait
from tests.dashboard.test_admins import PASSWORD, new_admin
from tests.gitsync.repos import Repo, hook_named, signed_ping

# A deployment loads each hook in the sandbox: slow on a machine busy with other tests.
DEPLOYED = 120


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("git-dashboard"), "sqlite", git_allow_local_repositories="true"
    ) as running:
        yield running


def _add_source(browser: webdriver.Chrome, name: str, repository: str) -> tuple[str, str]:
    """Fill and send the form; the webhook URL and secret it shows once."""
    form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.git-add"))
    form.find_element(By.NAME, "source_name").send_keys(name)
    form.find_element(By.NAME, "repository").send_keys(repository)
    form.find_element(By.XPATH, ".//button[text()='Add source']").click()
    shown = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".shown-once"))
    assert "shown this once" in shown.text
    url = shown.find_element(By.CSS_SELECTOR, ".webhook-url").text
    secret = shown.find_element(By.CSS_SELECTOR, ".secret").text
    return url, secret


def _open_source(browser: webdriver.Chrome, name: str) -> None:
    wait(browser, lambda b: b.find_element(By.LINK_TEXT, name)).click()
    wait(browser, lambda b: b.find_element(By.XPATH, f"//h1[text()='{name}']"))


def _confirm(browser: webdriver.Chrome) -> None:
    wait(browser, expected_conditions.alert_is_present()).accept()


def _deployment(browser: webdriver.Chrome, status: str, position: int = 1) -> webdriver.Remote:
    """The ``position``-th deployment (newest first) once it has ``status``."""
    return wait(
        browser,
        lambda b: b.find_element(
            By.CSS_SELECTOR,
            f"ul.deployments > li:nth-child({position})[data-status={status}]",
        ),
        timeout=DEPLOYED,
    )


def test_a_source_is_added_synced_and_keeps_its_hooks_read_only(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    hook = unique("from-git")
    repo.hook(hook, "first", enabled=False)
    sha = repo.push("Add the first hook")
    name = unique("src")
    with chromium() as browser:
        signed_in(browser, git_server, "/dashboard#/hooks")
        wait(browser, lambda b: b.find_element(By.LINK_TEXT, "Git")).click()
        url, secret = _add_source(browser, name, repo.url)
        assert len(secret) >= 32
        assert signed_ping(url, secret) == 200

        # The copy button puts the secret on the clipboard.
        browser.execute_cdp_cmd(
            "Browser.grantPermissions",
            {
                "origin": git_server.url,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            },
        )
        browser.find_element(By.CSS_SELECTOR, "button[data-copy=secret]").click()
        wait(browser, lambda b: "Secret copied" in b.find_element(By.CSS_SELECTOR, ".copied").text)
        copied = browser.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
        )
        assert copied == secret

        row = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f"tr[data-source='{name}']"))
        assert "none yet" in row.text
        _open_source(browser, name)
        # The secret is never shown again: not on the source's page.
        assert secret not in browser.page_source
        assert url in browser.find_element(By.CSS_SELECTOR, ".source-details").text

        browser.find_element(By.XPATH, "//button[text()='Sync now']").click()
        deployment = _deployment(browser, "succeeded")
        assert deployment.find_element(By.CSS_SELECTOR, ".commit code").text == sha[:12]
        assert "Add the first hook" in deployment.text
        assert "Ada Pusher <ada@example.com>" in deployment.text
        assert f"created {hook}" in deployment.find_element(By.CSS_SELECTOR, ".changes").text
        wait(browser, lambda b: hook in b.find_element(By.CSS_SELECTOR, ".source-hooks").text)

        # The hook it made: read-only, naming its source; its version names the commit.
        wait(browser, lambda b: deployment.find_element(By.LINK_TEXT, hook)).click()
        note = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".notice.managed"))
        wait(browser, lambda b: name in note.text)
        assert "read-only" in note.text
        content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
        assert content.get_attribute("contenteditable") == "false"
        assert browser.find_elements(By.XPATH, "//button[text()='Save']") == []
        assert browser.find_elements(By.NAME, "dependency_name") == []
        version = wait(
            browser,
            lambda b: b.find_element(By.CSS_SELECTOR, ".versions tr[data-version='1']"),
        )
        wait(browser, lambda b: sha[:12] in version.text)
        assert browser.find_elements(By.XPATH, "//button[text()='Deploy']") == []

        browser.get(git_server.url + "/dashboard#/git")
        row = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f"tr[data-source='{name}']"))
        wait(browser, lambda b: "succeeded" in row.text)
        assert sha[:12] in row.text
        assert page_errors(browser) == []


def test_a_failing_deployment_rotation_detach_and_delete(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    hook = unique("broken")
    repo.hook(hook, "good", enabled=False)
    repo.push("a good hook")
    name = unique("src")
    with chromium() as browser:
        signed_in(browser, git_server, "/dashboard#/git")
        url, old = _add_source(browser, name, repo.url)
        _open_source(browser, name)
        browser.find_element(By.XPATH, "//button[text()='Sync now']").click()
        _deployment(browser, "succeeded")

        repo.write(f"hooks/{hook}.py", "def credentials_exchange(client, scope:\n")
        repo.push("a broken hook")
        browser.find_element(By.XPATH, "//button[text()='Sync now']").click()
        failed = _deployment(browser, "failed")
        error = failed.find_element(By.CSS_SELECTOR, ".deployment-error").text
        assert f"hooks/{hook}.py" in error
        assert "a broken hook" in failed.text

        # Rotating, after a confirmation: the new secret once; the old one is refused.
        browser.find_element(By.XPATH, "//button[text()='Rotate secret']").click()
        _confirm(browser)
        shown = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".shown-once"))
        assert "old secret is refused" in shown.text
        new = shown.find_element(By.CSS_SELECTOR, ".secret").text
        assert new != old
        assert signed_ping(url, new) == 200
        assert signed_ping(url, old) == 401

        # Detached, its hook is hand-made: the editor saves again.
        browser.find_element(By.XPATH, "//button[text()='Detach']").click()
        _confirm(browser)
        wait(browser, lambda b: "Detached" in b.find_element(By.CSS_SELECTOR, ".status").text)
        owned = hook_named(git_server, hook)
        assert owned is not None
        assert owned["source_id"] is None
        browser.get(git_server.url + f"/dashboard#/hooks/{owned['id']}")
        wait(browser, lambda b: b.find_element(By.XPATH, "//button[text()='Save']"))
        assert browser.find_elements(By.CSS_SELECTOR, ".notice.managed") == []

        # Deleting asks first; a dismissed confirmation deletes nothing.
        browser.get(git_server.url + "/dashboard#/git")
        _open_source(browser, name)
        browser.find_element(By.XPATH, "//button[text()='Delete']").click()
        wait(browser, expected_conditions.alert_is_present()).dismiss()
        browser.find_element(By.XPATH, "//button[text()='Delete']").click()
        _confirm(browser)
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.git-add"))
        wait(browser, lambda b: b.find_elements(By.LINK_TEXT, name) == [])
        assert hook_named(git_server, hook) is not None  # its hooks stay
        assert page_errors(browser) == []


def test_credentials_are_write_only(git_server: Server, tmp_path: Path) -> None:
    token = "ghp_" + unique("tok").replace("-", "")
    name = unique("src")
    with chromium() as browser:
        signed_in(browser, git_server, "/dashboard#/git")
        form = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.git-add"))
        Select(form.find_element(By.NAME, "credential_kind")).select_by_value("token")
        field = form.find_element(By.NAME, "token")
        assert field.get_attribute("type") == "password"
        field.send_keys(token)
        _add_source(browser, name, Repo(tmp_path / "repo").url)
        assert form.find_element(By.NAME, "token").get_attribute("value") == ""
        _open_source(browser, name)
        assert "token (write-only)" in browser.find_element(By.CSS_SELECTOR, ".source-details").text
        assert token not in browser.page_source


def test_the_git_page_is_linked_only_for_admins_who_may_read_sources(
    git_server: Server,
) -> None:
    admin = new_admin(git_server, ["read:hooks"])
    with chromium() as browser:
        browser.get(git_server.url + "/dashboard#/hooks")
        wait(browser, lambda b: b.find_element(By.NAME, "email")).send_keys(admin["email"])
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(browser, lambda b: b.find_element(By.LINK_TEXT, "Hooks"))
        try:
            browser.find_element(By.LINK_TEXT, "Git")
        except NoSuchElementException:
            pass
        else:
            raise AssertionError("the Git page is linked for an admin without read:git_sources")
