"""Invoices as customers and billing staff use them (R-40..R-43).

The world's contracts are W-1's (start 2026-11-05, anchor day 21, ¥50,000); the run issues
their initial-fee invoices at the service start and the monthly ones on the 21st.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Invoice
from portal.services.invoicing import issue_invoices
from tests.browser.helpers import nav_link, sign_in
from tests.factories import World, build_world

pytestmark = pytest.mark.browser


def _issue(app, world: World) -> None:
    with app.app_context():
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21)):
            issue_invoices(day)


def test_administrator_reads_and_downloads_an_invoice(live_server, page: Page, browser_errors):
    world = build_world(live_server.app)
    _issue(live_server.app, world)
    sign_in(page, world.emails["admin"])
    nav_link(page, "/invoices").click()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    # what is owed now, and a Pay button on each invoice to pay.
    expect(page.get_by_test_id("outstanding-total")).to_have_text("¥165,000")  # INV-1, 3, 5
    row = page.get_by_test_id("invoice-INV-00000003")
    expect(row).to_contain_text("¥55,000")
    expect(row).to_contain_text("Overdue")  # due 2026-12-20; today is 2027-03-01
    expect(row.get_by_test_id("pay-INV-00000003")).to_have_text("Pay ¥55,000")
    row.get_by_role("link", name="INV-00000003").click()
    expect(page.get_by_test_id("invoice-lines")).to_contain_text("billing month 2026-12")
    expect(page.get_by_test_id("tax-10")).to_have_text("¥5,000")
    expect(page.get_by_test_id("invoice-total")).to_have_text("¥55,000")
    expect(page.get_by_test_id("pay")).to_have_text("Pay ¥55,000 by card")
    expect(page.get_by_test_id("bank-transfer")).to_contain_text("7654321")
    with page.expect_download() as download:
        page.get_by_test_id("invoice-pdf").click()
    content = open(download.value.path(), "rb").read()  # noqa: SIM115 - read once
    assert download.value.suggested_filename == "INV-00000003.pdf"
    with live_server.app.app_context():
        digest = db.session.scalar(
            sa.select(Invoice.pdf_sha256).where(Invoice.number == "INV-00000003")
        )
    assert hashlib.sha256(content).hexdigest() == digest  # as stored
    browser_errors.assert_none()


def test_billing_staff_find_an_invoice_and_record_a_bank_transfer(
    live_server, page: Page, browser_errors
):
    world = build_world(live_server.app)
    _issue(live_server.app, world)
    sign_in(page, world.emails["billing"])
    nav_link(page, "/staff/invoices").click()
    page.get_by_label("Counterparty (part of the name)").fill("alpha")
    page.get_by_label("Total from (yen, tax included)").fill("55000")
    page.get_by_role("button", name="Search").click()
    results = page.locator("table")
    expect(results).to_contain_text("INV-00000003")
    expect(results).not_to_contain_text("INV-00000004")  # Beta's
    page.get_by_role("link", name="INV-00000003").click()
    page.get_by_label("Received on").fill("2027-02-27")
    page.get_by_label("Reference (bank statement, payer name)").fill("ALPHA KK")
    page.get_by_role("button", name="Record the payment").click()
    # It cannot be undone: the page says what will be recorded before it is.
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("¥55,000")
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("ALPHA KK")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_text("INV-00000003 is paid")).to_be_visible()
    expect(page.get_by_test_id("amount-due")).to_have_text("¥0")
    # The issuer and bank account printed on invoices: billing staff read them.
    page.get_by_role("link", name="Invoices and credit notes").click()
    page.get_by_test_id("provider-link").click()
    expect(page.get_by_test_id("provider-settings")).to_contain_text("テスト銀行")
    browser_errors.assert_none()
