"""A customer administrator reads the contract calendar, in both languages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import sign_in, sign_out, switch_language
from tests.factories import build_world

pytestmark = pytest.mark.browser

# W-1: service start 2026-11-05, anchor day 21, minimum term 12 billing months.
W1_EN = {
    "term-anchor": "November 21, 2026",
    "minimum-term-end": "November 20, 2027",
    "notice-deadline": "October 21, 2027",
}
W1_JA = {
    "term-anchor": "2026年11月21日",
    "minimum-term-end": "2027年11月20日",
    "notice-deadline": "2027年10月21日",
}


def expect_calendar(page: Page, contract_id: int, dates: dict[str, str]) -> None:
    calendar = page.get_by_test_id(f"calendar-{contract_id}")
    for testid, text in dates.items():
        expect(calendar.get_by_test_id(testid)).to_contain_text(text)


def test_administrator_reads_the_contract_calendar_in_both_languages(
    live_server, page: Page, browser_errors
):
    world = build_world(live_server.app)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")  # the browser asks for Japanese

    sign_in(page, world.emails["admin"])
    # The administrator's own setting (English) wins over the browser's language.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator("header nav a[href='/contracts']").click()
    expect(page).to_have_url(re.compile(r"/contracts$"))
    expect(page.get_by_test_id(f"contract-{world.contract_b}")).to_have_count(0)
    expect_calendar(page, world.contract_a, W1_EN)

    page.get_by_test_id(f"contract-{world.contract_a}").locator("h3 a").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
    expect_calendar(page, world.contract_a, W1_EN)
    expect(page.locator("main")).to_contain_text("March 1, 2027")  # today in Tokyo

    switch_language(page, "ja")
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))  # same page
    expect_calendar(page, world.contract_a, W1_JA)
    expect(page.locator("main")).to_contain_text("2027年3月1日")
    expect(page.locator("main")).not_to_contain_text("November")

    # The choice sticks for the next page.
    page.locator("header nav a[href='/contracts']").click()
    expect(page).to_have_url(re.compile(r"/contracts$"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect_calendar(page, world.contract_a, W1_JA)

    switch_language(page, "en")
    expect_calendar(page, world.contract_a, W1_EN)

    sign_out(page)
    page.goto("/contracts")
    expect(page).to_have_url(re.compile(r"/login"))
    browser_errors.assert_none()
