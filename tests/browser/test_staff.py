"""Support staff view the portal as a customer, with a reason the customer then sees."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.models import Organisation
from tests.browser.helpers import nav_link, sign_in, sign_out
from tests.factories import build_world, rows

pytestmark = pytest.mark.browser

REASON = "Customer called about the renewal notice deadline (ticket 4711)"


def test_support_views_as_customer_and_the_administrator_sees_the_record(
    live_server, page: Page, browser_errors
):
    world = build_world(live_server.app)
    sign_in(page, world.emails["support"])
    nav_link(page, "/staff/organisations").click()
    expect(page).to_have_url(re.compile(r"/staff/organisations$"))

    page.locator("#organisation-rows").get_by_role("link", name="Alpha K.K.").click()
    expect(page).to_have_url(re.compile(rf"/staff/organisations/{world.org_a}$"))
    view_as = page.locator("form[action$='/view-as']")
    view_as.locator("#as_user_id").select_option(str(world.ids["admin"]))
    view_as.locator("#reason").fill(REASON)
    view_as.locator("button[type=submit]").click()

    # on every page while viewing, the banner says so and offers the stop button.
    banner = page.get_by_test_id("entry-banner")
    expect(page).to_have_url(re.compile(r"/contracts$"))
    expect(banner).to_contain_text("Alpha K.K.")
    expect(banner).to_contain_text(REASON)
    expect(banner.locator("button[type=submit]")).to_be_visible()
    expect(page.get_by_test_id(f"contract-{world.contract_a}")).to_be_visible()

    page.get_by_test_id(f"contract-{world.contract_a}").locator("h3 a").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
    expect(banner.locator("button[type=submit]")).to_be_visible()

    nav_link(page, "/access-records").click()
    expect(page).to_have_url(re.compile(r"/access-records$"))
    expect(banner.locator("button[type=submit]")).to_be_visible()
    expect(page.get_by_test_id("access-records")).to_contain_text(REASON)

    banner.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/staff/organisations/{world.org_a}$"))
    expect(banner).to_have_count(0)
    record = page.get_by_test_id("access-records").locator("tbody tr").first
    expect(record).to_contain_text("support")
    expect(record).to_contain_text(REASON)
    expect(record).to_contain_text("stopped")
    sign_out(page)

    sign_in(page, world.emails["admin"])
    nav_link(page, "/access-records").click()
    expect(page).to_have_url(re.compile(r"/access-records$"))
    expect(banner).to_have_count(0)
    record = page.get_by_test_id("access-records").locator("tbody tr").first
    expect(record.locator("td").nth(0)).to_contain_text("support")  # who
    expect(record.locator("td").nth(1)).to_contain_text("admin")  # as whom
    expect(record.locator("td").nth(4)).to_have_text(REASON)
    browser_errors.assert_none()


def test_staff_search_filters_live_with_htmx_under_the_csp(live_server, page: Page, browser_errors):
    """The vendored htmx loads under script-src 'self' and swaps the rows in place."""
    build_world(live_server.app)
    sign_in(page, "support@provider.example")
    response = page.goto("/staff/organisations")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.evaluate("typeof window.htmx") == "object"
    rows = page.locator("#organisation-rows tbody")
    expect(rows).to_contain_text("Alpha K.K.")
    expect(rows).to_contain_text("Beta K.K.")

    page.evaluate("window.__sameDocument = true")
    with page.expect_response(
        lambda r: "q=beta" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.locator("#q").press_sequentially("beta", delay=20)
    expect(rows).to_contain_text("Beta K.K.")
    expect(rows).not_to_contain_text("Alpha K.K.")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    expect(page).to_have_url(re.compile(r"/staff/organisations$"))
    browser_errors.assert_none()


def test_support_onboards_an_organisation_after_checking_what_it_creates(
    live_server, page: Page, browser_errors
):
    """Onboarding asks first (without JavaScript: a page with the same form), going back
    keeps what was typed, and the result is a page of its own: reloading it onboards
    nothing twice."""
    app = live_server.app
    world = build_world(app)
    sign_in(page, world.emails["support"])
    nav_link(page, "/staff/organisations/new").click()
    expect(page).to_have_url(re.compile(r"/staff/organisations/new$"))
    page.locator("#legal_name").fill("Gamma K.K.")
    page.locator("#legal_name_kana").fill("がんま")
    page.locator("#billing_email").fill("billing@gamma.example")
    page.locator("#admin_name").fill("Gamma Admin")
    page.locator("#admin_email").fill("admin@gamma.example")
    page.locator("#plan_id").select_option(str(world.ids["plan_small"]))
    page.locator("#service_start").fill("2027-03-05")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()

    summary = page.get_by_test_id("confirm-summary")
    expect(summary).to_contain_text("Create the organisation Gamma K.K. (ガンマ).")
    expect(summary).to_contain_text("from March 5, 2027")
    expect(summary).to_contain_text("Gamma Admin (admin@gamma.example)")
    with page.expect_navigation():
        page.get_by_test_id("edit").click()
    expect(page.locator("#legal_name")).to_have_value("Gamma K.K.")
    expect(page.locator("#service_start")).to_have_value("2027-03-05")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()

    expect(page).to_have_url(re.compile(r"/staff/organisations/\d+$"))
    main = page.locator("main")
    expect(main).to_contain_text("Gamma K.K. is onboarded")
    expect(main).to_contain_text("An invitation was e-mailed to admin@gamma.example")
    page.reload()
    expect(page.locator("h1")).to_have_text("Gamma K.K.")
    assert len(rows(app, Organisation, legal_name="Gamma K.K.")) == 1
    browser_errors.assert_none()
