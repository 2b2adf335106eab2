"""A real headless Chromium (Debian's chromium and chromium-driver, which `make
test` installs) driven through Selenium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

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
    driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], timeout: float = 10
) -> T:
    return WebDriverWait(driver, timeout).until(condition)  # type: ignore[no-any-return]
