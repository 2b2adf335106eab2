"""A person who forgot their password, in a real Chromium: from the sign-in page to
"Forgot your password?", the mail read from the tests' own SMTP server, the
reset page, and a sign-in with the new password that ends at the application."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

from tests.dashboard.browser import chromium, wait
from tests.mail.conftest import mail_server
from tests.mail.smtp import MailCatcher
from tests.signin.helpers import authorize_params, pkce
from tests.signin.test_browser import fill
from tests.users.helpers import OTHER_PASSWORD, PASSWORD, find_user, new_email

# Nothing listens there: the browser's arrival is what the test looks at.
CALLBACK = "http://127.0.0.1:9/callback"


def test_a_forgotten_password_is_reset_by_mail_and_works(tmp_path: Path, backend: str) -> None:
    smtp = MailCatcher().start()
    try:
        with mail_server(tmp_path, backend, smtp) as mail:
            with mail.server.api() as api:
                app = api.post(
                    "/clients",
                    json={"name": "Notes", "app_type": "regular_web", "callbacks": [CALLBACK]},
                ).json()
            email = new_email()
            signed_up = httpx.post(
                mail.url + "/dbconnections/signup",
                json={"client_id": app["client_id"], "email": email, "password": PASSWORD},
            )
            assert signed_up.status_code == 200, signed_up.text
            mail.wait_for_mail(email)  # the verification mail a signup sends
            _, challenge = pkce()
            params = {**authorize_params(app["client_id"], challenge), "redirect_uri": CALLBACK}
            authorize = str(httpx.URL(mail.url + "/authorize", params=params))
            with chromium() as browser:
                browser.get(authorize)
                wait(browser, lambda b: b.find_element(By.LINK_TEXT, "Forgot your password?"))
                browser.find_element(By.LINK_TEXT, "Forgot your password?").click()
                fill(browser, {"email": email}, "Send the link")
                wait(browser, lambda b: "We've just sent you an email" in b.page_source)

                reset = mail.wait_for_mail(email, 2)
                browser.get(reset.link("lo/reset"))
                fill(
                    browser,
                    {"newPassword": OTHER_PASSWORD, "confirmNewPassword": OTHER_PASSWORD},
                    "Reset password",
                )
                wait(browser, lambda b: "/lo/reset" in b.current_url and "changed" in b.page_source)

                browser.get(authorize)
                fill(browser, {"username": email, "password": PASSWORD}, "Continue")
                wait(browser, lambda b: "Wrong email or password." in b.page_source)
                fill(browser, {"username": email, "password": OTHER_PASSWORD}, "Continue")
                wait(browser, lambda b: b.current_url.startswith(CALLBACK + "?code="))
            # Following the mailed link proved the mailbox.
            assert find_user(mail.server, email)["email_verified"] is True
    finally:
        smtp.stop()
