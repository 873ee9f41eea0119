"""A sales agent acts for an assigned client and leaves again (R-71)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import nav_link, sign_in
from tests.factories import build_world

pytestmark = pytest.mark.browser


def test_agent_acts_for_a_client_and_leaves(live_server, page: Page, browser_errors):
    world = build_world(live_server.app)
    sign_in(page, world.emails["sales_agent"])
    nav_link(page, "/partner/clients").click()
    expect(page).to_have_url(re.compile(r"/partner/clients$"))
    client = page.get_by_test_id(f"client-{world.org_a}")
    expect(client).to_contain_text("Alpha K.K.")
    expect(client).to_contain_text("October 21, 2027")  # the notice deadline of W-1
    expect(page.get_by_test_id(f"client-{world.org_b}")).to_have_count(0)

    client.locator("input[name=purpose]").fill("Renewal consultation")
    client.get_by_role("button", name="Act for this client").click()

    banner = page.get_by_test_id("entry-banner")
    expect(page).to_have_url(re.compile(r"/contracts$"))
    expect(banner).to_contain_text("Alpha K.K.")
    expect(banner).to_contain_text("Sales Agent Co.")
    expect(page.get_by_test_id(f"contract-{world.contract_a}")).to_be_visible()
    expect(page.get_by_test_id(f"contract-{world.contract_b}")).to_have_count(0)

    page.get_by_test_id(f"contract-{world.contract_a}").locator("h3 a").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}$"))
    expect(banner).to_be_visible()
    expect(page.get_by_test_id("notice-deadline")).to_contain_text("October 21, 2027")

    banner.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/partner/clients$"))
    expect(banner).to_have_count(0)
    expect(page.get_by_test_id(f"client-{world.org_a}")).to_be_visible()
    browser_errors.assert_none()
