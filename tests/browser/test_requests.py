"""Requests with their quote: an upgrade, a cancellation withdrawn, an agency renewal (R-20..R-32),
with htmx and without JavaScript.

The portal's clock stands at 2027-03-01 10:00 in Tokyo (tests/conftest.py), the notice date of
W-2; the world's contract A is W-1's (start 2026-11-05, anchor day 21, 12 months, ¥50,000).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import main_navigation, sign_in, switch_language
from tests.factories import World, add_contract, add_plan, build_world

pytestmark = pytest.mark.browser


def open_contract_page(page: Page, contract_id: int) -> None:
    """From the contract list to one contract, as a user clicks."""
    main_navigation(page).get_by_role("link", name=re.compile("Contracts|ご契約")).click()
    expect(page).to_have_url(re.compile(r"/contracts$"))
    page.get_by_test_id(f"contract-{contract_id}").locator("h3 a").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{contract_id}$"))


def mark_page(page: Page) -> None:
    page.evaluate("window.__requestJourneyMarker = true")


def expect_no_page_load_since_marked(page: Page) -> None:
    """The marker set on window by mark_page() survives only if the document was not replaced."""
    assert page.evaluate("window.__requestJourneyMarker === true"), "the page was reloaded"


def test_administrator_upgrades_with_the_live_quote(live_server, page: Page, browser_errors):
    world = build_world(live_server.app)
    cheap = add_plan(live_server.app, world, code="iw-30", fee=30_000, capacity=30)
    sign_in(page, world.emails["admin"])
    open_contract_page(page, world.contract_a)

    page.get_by_test_id("change-plan").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/change$"))
    # The page starts from the likely upgrade (the only dearer plan), never from a downgrade.
    large = world.ids["plan_large"]
    expect(page.get_by_label("New plan")).to_have_value(str(large))
    expect(page.get_by_test_id("charge-shortfall")).to_have_count(0)

    # R-21 (W-3's amounts, with W-2's notice date): ¥50,000 + ¥5,000 before tax.
    quote = page.get_by_test_id("quote")
    expect(quote.get_by_test_id("quote-effective-on")).to_contain_text("March 11, 2027")
    expect(quote.get_by_test_id("quote-new-fee")).to_contain_text("¥100,000")
    expect(quote.get_by_test_id("quote-new-fee")).to_contain_text("billing month 2027-04")
    expect(page.get_by_test_id("charge-initial_fee_difference")).to_have_text("¥50,000")
    expect(page.get_by_test_id("charge-change_fee")).to_have_text("¥5,000")
    expect(page.get_by_test_id("quote-tax-10")).to_have_text("¥5,500")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥60,500")

    # A downgrade chosen, a month end picked, then the upgrade again: its own earliest date,
    # never the downgrade's month end; htmx swaps the panel in place each time.
    mark_page(page)
    page.get_by_label("New plan").select_option(str(cheap))
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("April 20, 2027")
    page.get_by_label("The current contract ends on").select_option("2027-05-20")
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("May 20, 2027")
    page.get_by_label("New plan").select_option(str(large))
    expect(quote.get_by_test_id("quote-effective-on")).to_contain_text("March 11, 2027")
    expect(page.get_by_label("Takes effect on")).to_have_value("2027-03-11")

    # A later date moves the new fee one billing month on.
    page.get_by_label("Takes effect on").fill("2027-03-25")
    expect(quote.get_by_test_id("quote-effective-on")).to_contain_text("March 25, 2027")
    expect(quote.get_by_test_id("quote-new-fee")).to_contain_text(
        "billing month 2027-05 (April 21, 2027 – May 20, 2027)"
    )
    expect(page.get_by_test_id("quote-total")).to_have_text("¥60,500")
    expect_no_page_load_since_marked(page)
    expect(page).to_have_url(re.compile(r"on=2027-03-25"))  # the choice is in the address

    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/requests/\d+$"))
    expect(page.get_by_test_id("request-status")).to_have_text("Pending")
    expect(page.locator(".flash-success")).to_contain_text("recorded as your written notice")
    expect(page.get_by_test_id("quote-effective-on")).to_contain_text("March 25, 2027")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥60,500")
    expect(page.get_by_test_id("withdraw")).to_be_visible()

    # The confirmation, stored when it was confirmed, in the organisation's language.
    with page.expect_download() as download_info:
        page.get_by_test_id("request-pdf").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-confirmation-ja.pdf"), download.suggested_filename
    assert Path(download.path()).read_bytes().startswith(b"%PDF")

    page.get_by_role("link", name=f"Contract no. {world.contract_a}").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
    pending = page.get_by_test_id("pending-request")
    expect(pending).to_contain_text("Upgrade")
    expect(pending).to_contain_text("takes effect on March 25, 2027")
    expect(page.get_by_test_id("plan-changes-on")).to_contain_text("March 25, 2027")
    expect(page.get_by_test_id("change-plan")).to_have_count(0)
    expect(page.get_by_test_id("requests-withheld")).to_contain_text("March 25, 2027")
    browser_errors.assert_none()


def test_administrator_cancels_inside_the_minimum_term_then_withdraws(
    live_server, page: Page, browser_errors
):
    world = build_world(live_server.app)
    sign_in(page, world.emails["admin"])
    open_contract_page(page, world.contract_a)
    page.get_by_test_id("end-contract").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/end"))
    expect(page.get_by_role("radio", name="Cancel at a month end")).to_be_checked()

    # W-2: notice 2027-03-01 ends the contract on 2027-04-20 with 7 months still to pay.
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("April 20, 2027")
    expect(page.get_by_test_id("quote-unexpired-months")).to_have_text("7")
    expect(page.get_by_test_id("charge-shortfall")).to_have_text("¥350,000")
    expect(page.get_by_test_id("quote-tax-10")).to_have_text("¥35,000")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥385,000")

    # The same quote in Japanese, on the same page.
    switch_language(page, "ja")
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/end"))
    expect(page.locator("main")).to_contain_text("2027年3月1日")
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("2027年4月20日")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥385,000")
    switch_language(page, "en")

    # Ending when the minimum term ends owes no shortfall: the quote says so.
    mark_page(page)
    expect(page.get_by_test_id("cheaper-end")).to_contain_text("November 20, 2027")
    page.get_by_test_id("cheaper-end-quote").click()
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("November 20, 2027")
    expect(page.get_by_test_id("quote-no-charges")).to_be_visible()
    expect(page.get_by_test_id("cheaper-end")).to_have_count(0)

    # One month later than the earliest: one month less of the minimum term to pay.
    page.get_by_label("The current contract ends on").select_option("2027-05-20")
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("May 20, 2027")
    expect(page.get_by_test_id("quote-unexpired-months")).to_have_text("6")
    expect(page.get_by_test_id("charge-shortfall")).to_have_text("¥300,000")
    expect(page.get_by_test_id("quote-tax-10")).to_have_text("¥30,000")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥330,000")
    expect_no_page_load_since_marked(page)
    # The language switch returns to the choice now shown, not the one the page opened with.
    switch_language(page, "ja")
    expect(page).to_have_url(re.compile(r"on=2027-05-20"))
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("2027年5月20日")
    switch_language(page, "en")

    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/requests/\d+$"))
    expect(page.get_by_test_id("request-status")).to_have_text("Pending")
    expect(page.get_by_test_id("quote-termination-on")).to_have_text("May 20, 2027")
    expect(page.get_by_test_id("quote-total")).to_have_text("¥330,000")
    request_url = page.url

    # The contract page tells the truth while it is pending: no renewal, no notice deadline.
    page.get_by_role("link", name=f"Contract no. {world.contract_a}").click()
    expect(page.get_by_test_id("ends-on")).to_have_text(
        "May 20, 2027, as requested; it will not renew."
    )
    expect(page.get_by_test_id("next-renewal")).to_have_count(0)
    expect(page.get_by_test_id("notice-deadline")).to_have_count(0)
    expect(page.get_by_test_id("end-contract")).to_have_count(0)

    # Withdrawing asks first, on a page of its own, and says what it does.
    page.get_by_test_id("withdraw-pending").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(request_url)}/withdraw$"))
    summary = page.get_by_test_id("confirm-summary")
    expect(summary).to_contain_text("The contract will not end on May 20, 2027.")
    expect(summary).to_contain_text("The ¥330,000 quoted (tax included) will not be billed.")
    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
    expect(page.locator(".flash-success")).to_have_text(
        "The request was withdrawn. Nothing will be billed for it."
    )
    expect(page.get_by_test_id("pending-request")).to_have_count(0)
    requests = page.get_by_test_id("requests").locator("tbody tr")
    expect(requests).to_have_count(1)
    expect(requests.first).to_contain_text("Cancellation")
    expect(requests.first.locator("td").last).to_have_text("Withdrawn")
    expect(page.get_by_test_id("end-contract")).to_be_visible()  # free to ask again
    expect(page.get_by_test_id("next-renewal")).to_contain_text("November 21, 2027")
    page.reload()  # the page after the withdrawal is a GET: a reload sends nothing again
    expect(page.locator(".flash-success")).to_have_count(0)

    page.goto(request_url)
    expect(page.get_by_test_id("request-status")).to_have_text("Withdrawn")
    expect(page.get_by_test_id("withdraw")).to_have_count(0)
    with page.expect_download() as download_info:
        page.get_by_test_id("withdrawal-pdf").click()
    assert download_info.value.suggested_filename.endswith("-withdrawal-ja.pdf")
    browser_errors.assert_none()


def test_without_javascript_the_quote_and_the_withdrawal_still_work(
    live_server, browser, browser_errors
):
    """The same forms without JavaScript: "Show the quote" sends the choice, a date chosen
    for a downgrade is not carried to an upgrade, and the withdrawal is confirmed on its page."""
    world = build_world(live_server.app)
    cheap = add_plan(live_server.app, world, code="iw-30", fee=30_000, capacity=30)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, locale="en-US"
    )
    page = context.new_page()
    page.on("console", browser_errors.on_console)
    try:
        sign_in(page, world.emails["admin"])
        page.goto(f"/contracts/{world.contract_a}/change")
        page.get_by_label("New plan").select_option(str(cheap))
        page.get_by_test_id("show-quote").click()
        expect(page.get_by_test_id("quote-termination-on")).to_have_text("April 20, 2027")
        page.get_by_label("The current contract ends on").select_option("2027-05-20")
        page.get_by_test_id("show-quote").click()
        expect(page.get_by_test_id("quote-termination-on")).to_have_text("May 20, 2027")
        page.get_by_label("New plan").select_option(str(world.ids["plan_large"]))
        page.get_by_test_id("show-quote").click()
        expect(page.get_by_test_id("quote-effective-on")).to_contain_text("March 11, 2027")

        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("request-status")).to_have_text("Pending")
        page.get_by_test_id("withdraw").click()
        expect(page.get_by_test_id("confirm-summary")).to_contain_text(
            "The plan will not change to 100 GB on March 11, 2027."
        )
        page.get_by_test_id("edit").click()  # changed their mind: back to the request
        expect(page.get_by_test_id("request-status")).to_have_text("Pending")
        page.get_by_test_id("withdraw").click()
        page.get_by_test_id("confirm").click()
        expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
        expect(page.get_by_test_id("change-plan")).to_be_visible()
    finally:
        context.close()
    assert not browser_errors.messages, browser_errors.messages


@pytest.fixture
def agency_world(live_server) -> tuple[World, int]:
    """The world, plus a contract of org A sold through its agency: W-1's dates, 6-month periods."""
    world = build_world(live_server.app)
    contract_id = add_contract(
        live_server.app,
        world.org_a,
        service_start=date(2026, 11, 5),
        partner_id=world.ids["agency_partner"],
    )
    return world, contract_id


def test_agency_agent_applies_for_renewal_without_seeing_amounts(
    agency_world, page: Page, browser_errors
):
    world, contract_id = agency_world
    sign_in(page, world.emails["agency_agent"])
    main_navigation(page).get_by_role("link", name="Clients").click()
    expect(page).to_have_url(re.compile(r"/partner/clients$"))
    client = page.get_by_test_id(f"client-{world.org_a}")
    expect(client).to_contain_text("Renewal application due")
    client.get_by_role("button", name="Act for this client").click()
    expect(page).to_have_url(re.compile(r"/contracts$"))
    expect(page.get_by_test_id("entry-banner")).to_contain_text("Agency Co.")

    open_contract_page(page, contract_id)
    page.get_by_test_id("apply-renewal").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{contract_id}/renew"))

    # period 0 is 2026-11-21 .. 2027-05-20; the application is for the one after.
    panel = page.get_by_test_id("request-panel")
    expect(panel.get_by_test_id("quote-next-period")).to_have_text(
        "May 21, 2027 – November 20, 2027"
    )
    expect(panel.get_by_test_id("quote-no-charges")).to_be_visible()
    expect(panel).not_to_contain_text("¥")  # agencies never see amounts
    expect(page.locator("main")).not_to_contain_text("¥")

    panel.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{contract_id}/requests/\d+$"))
    expect(page.get_by_test_id("request-status")).to_have_text("Pending")
    expect(page.get_by_test_id("requested-by")).to_contain_text("agent of Agency Co.")
    expect(page.get_by_test_id("quote-next-period")).to_have_text(
        "May 21, 2027 – November 20, 2027"
    )
    expect(page.locator("main")).not_to_contain_text("¥")

    page.get_by_role("link", name=f"Contract no. {contract_id}").click()
    expect(page.get_by_test_id("pending-request")).to_contain_text(
        "the next period starts on May 21, 2027"
    )
    # applied for, so no longer "due" (and no "ends without an application").
    expect(page.get_by_test_id("agency-renewal-due")).to_have_count(0)
    expect(page.get_by_test_id("agency-renewal-applied")).to_contain_text(
        "May 21, 2027 – November 20, 2027, applied for"
    )
    expect(page.get_by_test_id("apply-renewal")).to_have_count(0)
    browser_errors.assert_none()
