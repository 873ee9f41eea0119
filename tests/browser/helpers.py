"""What a person does in the browser, shared by the journeys."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from portal import mailer
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


def open_user_menu(page: Page) -> Locator:
    """Open the header's user menu (password, API tokens, misuse, language, sign-out), if
    someone is signed in, and return what it holds (the header itself when no one is)."""
    menu = page.get_by_test_id("user-menu")
    if menu.count() == 0:
        return page.locator("header .header-tools")
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    return menu


def sign_out(page: Page) -> None:
    menu = open_user_menu(page)
    with page.expect_navigation():
        menu.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def switch_language(page: Page, locale: str) -> None:
    """Use the language switch in the header (in the user menu once signed in)."""
    menu = open_user_menu(page)
    menu.locator("#site-locale").select_option(locale)
    with page.expect_navigation():
        menu.locator("form.language-switch button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", locale)


def main_navigation(page: Page) -> Locator:
    """The header's main navigation (links of the same name appear in the pages too)."""
    return page.get_by_role("navigation", name="Main navigation")


def nav_link(page: Page, href: str) -> Locator:
    """The header's link to `href`, its menu opened first when it sits in one (Organisation,
    Operations, the user menu)."""
    link = page.locator(f"header a[href='{href}']")
    menu = page.locator("header details.menu", has=page.locator(f"a[href='{href}']"))
    if menu.count() and menu.get_attribute("open") is None:
        menu.locator("summary").click()
    return link


def screenshot_at_widths(page: Page, stem: Path, widths: tuple[int, ...] = (1280, 390)) -> None:
    """Full-page screenshots of the current page at each width (stem-1280.png, ...), for
    looking at the layout; the viewport is put back afterwards."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    for width in widths:
        page.set_viewport_size({"width": width, "height": viewport["height"] if viewport else 900})
        page.screenshot(path=f"{stem}-{width}.png", full_page=True)
    if viewport:
        page.set_viewport_size(viewport)


def expect_error_page(page: Page, browser_errors, path: str, status: int) -> None:
    """Open an address that answers an error page and check its status. Chromium reports
    the document's error status as a console error, after the navigation has finished; that
    one message is waited for and taken off the list of browser errors, any other stays."""
    expected = f"the server responded with a status of {status}"
    with page.expect_console_message(lambda m: m.type == "error" and expected in m.text):
        response = page.goto(path)
    assert response is not None and response.status == status, (
        f"{path} answered {response.status if response else None}, not {status}"
    )
    browser_errors.messages[:] = [
        m for m in browser_errors.messages if not (expected in m and f"({page.url})" in m)
    ]


def send_mail(app) -> mailer.Delivery:
    """One run of the scheduled `flask portal send-mail`."""
    with app.app_context():
        return mailer.deliver_due(dict(app.config))
