"""Issue 15: a long list's pages on a small phone, in Japanese, by keyboard-reachable links,
with nothing axe-core finds (the `page` fixture checks every page it loads)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import User
from tests.browser.helpers import sign_in
from tests.browser.test_layout import _OVERFLOWING, SMALL_PHONE
from tests.factories import add_contract, build_world

pytestmark = pytest.mark.browser


def test_the_contracts_pages_on_a_360_px_phone(live_server, page: Page, browser_errors):
    app = live_server.app
    world = build_world(app)
    for n in range(24):
        add_contract(app, world.org_a, service_start=date(2026, 12, 1) + timedelta(days=n))
    with app.app_context():
        db.session.get(User, world.ids["admin"]).locale = "ja"
        db.session.commit()
    page.set_viewport_size(SMALL_PHONE)
    sign_in(page, world.emails["admin"])
    page.goto("/contracts")
    pager = page.locator("nav.pager")  # named "Pages: <the list>" (ja_paging.json)
    expect(pager.locator("[aria-current=page]")).to_have_text("1")
    expect(pager).to_contain_text("2ページ中1ページ目")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.evaluate(
        _OVERFLOWING
    )

    pager.get_by_role("link", name="次のページ").click()
    expect(page).to_have_url(f"{live_server.url}/contracts?page=2")
    expect(pager.locator("[aria-current=page]")).to_have_text("2")
    expect(page.locator("article.card")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.evaluate(
        _OVERFLOWING
    )
    pager.get_by_role("link", name="前のページ").click()
    expect(page.locator("article.card")).to_have_count(20)
    browser_errors.assert_none()
