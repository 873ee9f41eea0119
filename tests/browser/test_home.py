"""The home page says what needs doing: an administrator signs in and follows it.

The clock stands at 2027-03-01 10:00 in Tokyo; the world's contract A is W-1's (start
2026-11-05, anchor day 21, ¥50,000); a second contract of A started 2026-04-21, so its
notice against renewal is due 2027-03-21, 20 days ahead.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Invoice
from portal.services.invoicing import issue_invoices
from tests.browser.helpers import sign_in
from tests.factories import add_contract, build_world

pytestmark = pytest.mark.browser


def test_an_administrator_follows_the_home_page_to_an_overdue_invoice(
    live_server, page: Page, browser_errors
):
    app = live_server.app
    world = build_world(app)
    soon = add_contract(app, world.org_a, service_start=date(2026, 4, 21))
    with app.app_context():
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21)):
            issue_invoices(day)
        invoice_id, number = db.session.execute(
            sa.select(Invoice.id, Invoice.number).where(
                Invoice.organisation_id == world.org_a, Invoice.due_on == date(2026, 12, 20)
            )
        ).one()

    sign_in(page, world.emails["admin"])
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("amount-due")).to_contain_text("¥")
    overdue = page.get_by_test_id(f"home-invoice-{invoice_id}")
    expect(overdue).to_contain_text("days overdue")
    expect(overdue.get_by_role("link", name="Pay")).to_be_visible()
    deadline = page.get_by_test_id(f"deadline-{soon}-renewal_notice")
    expect(deadline).to_contain_text("Notice against renewal by March 21, 2027")
    expect(deadline).to_contain_text("20 days left")

    overdue.get_by_role("link", name=f"Invoice {number}").click()
    expect(page).to_have_url(re.compile(rf"/invoices/{invoice_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    browser_errors.assert_none()
