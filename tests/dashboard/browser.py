"""A real headless Chromium (Debian's chromium and chromium-driver, which `make
test` installs) driven through Selenium, and the steps many dashboard tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Server

T = TypeVar("T")


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(
    driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], timeout: float = 30
) -> T:
    # Long enough for a page of a server on a machine busy with other tests; a
    # condition that holds returns at once. A condition reading an element the page
    # replaced meanwhile (a navigation, a re-render) is asked again, not failed.
    return WebDriverWait(  # type: ignore[no-any-return]
        driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    ).until(condition)


def client_sign_in_form(browser: webdriver.Chrome) -> None:
    """Switch the sign-in form from an admin user's email to a client's id and secret."""
    field = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "form.sign-in input"))
    if field.get_attribute("name") == "email":  # the browser remembers the last choice
        browser.find_element(
            By.XPATH, "//button[text()='Sign in with a client ID and secret']"
        ).click()


def signed_in(browser: webdriver.Chrome, server: Server, page: str) -> None:
    """Open ``page`` and sign in there as the bootstrap admin client."""
    browser.get(server.url + page)
    client_sign_in_form(browser)
    wait(browser, lambda b: b.find_element(By.NAME, "client_id")).send_keys(server.admin_id)
    browser.find_element(By.NAME, "client_secret").send_keys(server.admin_secret)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def replace_code(browser: webdriver.Chrome, *lines: str) -> None:
    """Replace the editor's code with ``lines``, typed one by one."""
    content = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".cm-content"))
    content.click()
    content.send_keys(Keys.CONTROL, "a")
    content.send_keys(Keys.DELETE)
    for number, line in enumerate(lines):
        if number:
            content.send_keys(Keys.ENTER)  # the editor indents the next line itself
        # As a keyboard's text input arrives (typed keys may come as no-break spaces).
        browser.execute_cdp_cmd("Input.insertText", {"text": line})


def page_errors(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """The errors the page's scripts logged since last asked (not failed requests,
    which a 401 before sign-in is)."""
    return [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and entry["source"] != "network"
    ]


def offered(browser: webdriver.Chrome, expected: Callable[[list[str]], bool]) -> list[str]:
    """The labels of the completion menu, once they are what is ``expected`` (the menu
    of the keystroke before may still show for a moment on a busy machine); what it
    shows after a while otherwise, for the assertion that follows to report."""
    seen: list[str] = []

    def labels(found: webdriver.Chrome) -> list[str] | None:
        nonlocal seen
        try:
            menu = found.find_element(By.CSS_SELECTOR, ".cm-tooltip-autocomplete")
            seen = [
                label.text
                for label in menu.find_elements(By.CSS_SELECTOR, "li .cm-completionLabel")
            ]
        except (NoSuchElementException, StaleElementReferenceException):
            return None
        return seen if expected(seen) else None

    try:
        return wait(browser, labels)
    except TimeoutException:
        return seen
