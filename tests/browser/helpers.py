"""What a person does in the browser, shared by the journeys."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form."""
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/login" not in page.url, (
        f"sign-in as {email} failed: {page.locator('main').inner_text()}"
    )


def sign_out(page: Page) -> None:
    with page.expect_navigation():
        page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def switch_language(page: Page, locale: str) -> None:
    """Use the language switch in the header."""
    page.locator("#locale").select_option(locale)
    with page.expect_navigation():
        page.locator("form.language-switch button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", locale)
