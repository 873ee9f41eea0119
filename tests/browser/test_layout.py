"""The layout on a phone and on a desktop, and accessibility (issue 11).

Every page is checked with axe-core by the `page` fixture (tests/browser/conftest.py); here
the pages come from the permission matrix: every HTML page an actor may open (200 there),
with organisation A's objects, so a new page is checked as soon as it is in the matrix.
Customer pages are loaded 390 px wide and must not scroll sideways.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from portal.extensions import db
from portal.models import StaffRole, UserKind
from tests.browser.helpers import nav_link, open_user_menu, sign_in, sign_out, switch_language
from tests.factories import ACTOR_KINDS, World, add_user, build_world
from tests.web.routes import route_ids, url_of
from tests.web.test_permission_matrix import MATRIX

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
# Not pages: JSON, files and the webhook.
NOT_PAGES = {"static", "main.healthz", "stripe_webhook.stripe_webhook"}

# What sticks out of the viewport, outside any box that scrolls or clips it (an absolutely
# positioned element escapes such a box unless the box is positioned).
_OVERFLOWING = """() => {
  const clipped = (e) => {
    const escapes = ["absolute", "fixed"].includes(getComputedStyle(e).position);
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.overflowX !== "visible" && (!escapes || style.position !== "static")) {
        return true;
      }
    }
    return false;
  };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + [...e.classList].map((c) => "." + c).join("");
  return [...document.body.querySelectorAll("*")]
    .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5 && !clipped(e))
    .slice(0, 4)
    .map((e) => `${name(e)} (${Math.round(e.getBoundingClientRect().right)} px)`);
}"""
# Labels of the header whose text runs onto a second line (a Japanese word broken: ご契/約).
_BROKEN_LABELS = """() => [...document.querySelectorAll(
    "header .nav-list a, header summary, header .menu-panel a, header button")]
  .filter((e) => e.checkVisibility())
  .flatMap((e) => {
    const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    const broken = [];
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const range = document.createRange();
      range.selectNodeContents(text);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.bottom)));
      if (lines.size > 1) broken.push(text.textContent.trim());
    }
    return broken;
  })"""


def page_endpoints(*actors: str, answer: int = 200) -> set[str]:
    """GET routes (not the API's) the permission matrix answers `answer` for every one of
    `actors`."""
    columns = [ACTOR_KINDS.index(actor) for actor in actors]
    return {
        endpoint
        for (endpoint, method), row in MATRIX.items()
        if method == "GET"
        and all(row[c] == answer for c in columns)
        and endpoint not in NOT_PAGES
        and not endpoint.startswith("api.")
    }


# The back office's pages for staff administrators only (the matrix has no column for
# them: support and billing staff both get 403 there).
ADMINISTRATORS_ONLY = ("support", "billing")


def pages_for(app: Flask, world: World, actor: str) -> dict[str, str]:
    """endpoint -> URL of every page the permission matrix gives `actor` (a 200)."""
    endpoints = page_endpoints(actor)
    return {e: url_of(app, e, **route_ids(app, world, e)) for e in sorted(endpoints)}


def add_staff_administrator(app: Flask) -> str:
    with app.app_context():
        user = add_user(
            "staff-admin@provider.example", kind=UserKind.STAFF, staff_role=StaffRole.ADMINISTRATOR
        )
        db.session.commit()
        return user.email


def visit(page: Page, urls: dict[str, str], *, phone: bool = False) -> tuple[list[str], list[str]]:
    """Open each page that answers HTML; the fixture checks each with axe-core. Returns the
    endpoints shown and, on a phone, the pages wider than the screen."""
    shown, too_wide = [], []
    for endpoint, url in urls.items():
        answer = page.request.get(url, max_redirects=0)
        if answer.status != 200 or not answer.headers["content-type"].startswith("text/html"):
            continue  # a file (PDF, CSV, feed), or a page of a state the matrix leaves
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{url}: {response}"
        shown.append(endpoint)
        if phone:
            width, viewport = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if width > viewport:
                culprits = ", ".join(page.evaluate(_OVERFLOWING))
                too_wide.append(f"{url} ({endpoint}): {width} px wide in {viewport}: {culprits}")
    return shown, too_wide


def test_every_customer_page_reads_on_a_phone(live_server, page: Page, browser_errors):
    """Issue 11: no page of an administrator's portal scrolls sideways 390 px wide, and
    axe-core finds nothing on any of them."""
    app = live_server.app
    world = build_world(app)
    urls = pages_for(app, world, "admin")
    page.set_viewport_size(PHONE)
    sign_in(page, world.emails["admin"])
    shown, too_wide = visit(page, urls, phone=True)
    assert {"contracts.home", "contracts.detail", "invoices.index"} <= set(shown)
    assert not too_wide, "pages wider than a phone:\n" + "\n".join(too_wide)

    # The menus open inside the screen too.
    page.goto(f"/contracts/{world.contract_a}")
    nav_link(page, "/organisation")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    open_user_menu(page)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    browser_errors.assert_none()


def test_back_office_pages(live_server, page: Page, browser_errors):
    """Every page of the back office, as support staff, and as billing staff for those only
    billing staff open."""
    app = live_server.app
    world = build_world(app)
    support = pages_for(app, world, "support")
    billing = {e: u for e, u in pages_for(app, world, "billing").items() if e not in support}
    sign_in(page, world.emails["support"])
    shown, _ = visit(page, support)
    assert {"staff.organisations", "staff_sla.incidents"} <= set(shown)
    sign_out(page)
    sign_in(page, world.emails["billing"])
    visit(page, billing)
    sign_out(page)
    sign_in(page, add_staff_administrator(app))
    endpoints = sorted(page_endpoints(*ADMINISTRATORS_ONLY, answer=403))
    shown, _ = visit(page, {e: url_of(app, e, **route_ids(app, world, e)) for e in endpoints})
    assert "staff_terms.index" in shown
    browser_errors.assert_none()


def test_agent_and_signed_out_pages(live_server, page: Page, browser_errors):
    """The sign-in and password pages, and an agent's own pages (the clients)."""
    app = live_server.app
    world = build_world(app)
    shown, _ = visit(page, pages_for(app, world, "anonymous"))
    assert "auth.login" in shown
    sign_in(page, world.emails["sales_agent"])
    page.goto("/partner/clients")
    expect(page.get_by_test_id(f"client-{world.org_a}")).to_be_visible()
    page.set_viewport_size(PHONE)
    page.goto("/partner/clients")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    browser_errors.assert_none()


def test_every_blueprint_has_a_page_the_layout_tests_check(app: Flask):
    """At least one page of every blueprint with pages is among those visited above."""
    visited = {"partners.clients"} | page_endpoints(*ADMINISTRATORS_ONLY, answer=403)
    for actor in ("anonymous", "admin", "support", "billing"):
        visited |= page_endpoints(actor)
    with_pages = {
        rule.endpoint.split(".")[0]
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.endpoint not in NOT_PAGES and "." in rule.endpoint
    } - {"api"}
    covered = {endpoint.split(".")[0] for endpoint in visited}
    assert with_pages - covered == set()


def test_the_japanese_home_and_contract_pages_at_two_widths(
    live_server, page: Page, browser_errors
):
    """Issue 11: screenshots kept in test-artifacts/ (layout-*.png) for anyone to look at the
    portal without starting it; in Japanese no label of the header breaks inside a word."""
    world = build_world(live_server.app)
    sign_in(page, world.emails["admin"])
    switch_language(page, "ja")
    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("home", "/"), ("contract", f"/contracts/{world.contract_a}")):
        page.goto(path)
        for size in (DESKTOP, PHONE, SMALL_PHONE):
            page.set_viewport_size(size)
            where = f"{path} at {size['width']} px"
            assert page.evaluate(_BROKEN_LABELS) == [], where
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), where
            if size is not SMALL_PHONE:
                shot = ARTIFACTS / f"layout-{name}-ja-{size['width']}.png"
                page.screenshot(path=str(shot), full_page=True)
    page.set_viewport_size(PHONE)
    open_user_menu(page)
    assert page.evaluate(_BROKEN_LABELS) == []
    page.screenshot(path=str(ARTIFACTS / "layout-user-menu-ja-390.png"))
    page.keyboard.press("Escape")
    nav_link(page, "/organisation/users")
    assert page.evaluate(_BROKEN_LABELS) == []
    page.screenshot(path=str(ARTIFACTS / "layout-menu-ja-390.png"))
    browser_errors.assert_none()


def test_the_menus_work_from_the_keyboard(live_server, page: Page, browser_errors):
    """A menu opens with Enter on its heading, its links take the focus, Escape closes it."""
    world = build_world(live_server.app)
    sign_in(page, world.emails["admin"])
    menu = page.get_by_test_id("menu-organisation")
    menu.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(menu.locator("a").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", re.compile(".*"))
    expect(menu.locator("summary")).to_be_focused()
    browser_errors.assert_none()


def test_the_menus_work_without_javascript(live_server, browser: Browser):
    """<details> menus: the header's links and forms need no script."""
    world = build_world(live_server.app)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, locale="en-US", viewport=PHONE
    )
    try:
        page = context.new_page()
        sign_in(page, world.emails["admin"])
        nav_link(page, "/access-records").click()
        expect(page).to_have_url(re.compile(r"/access-records$"))
        switch_language(page, "ja")
        expect(page).to_have_url(re.compile(r"/access-records$"))
        sign_out(page)
    finally:
        context.close()


def test_the_check_of_every_page_finds_what_it_should(live_server, page: Page, browser_errors):
    """The fixture's check itself: a page with an image without a text alternative and a
    repeated id fails, with its address, the rule and the element."""
    bad_page = (
        '<!doctype html><html lang="en"><head><title>Self-test</title></head><body><main>'
        '<h1>Self-test</h1><img src="/static/favicon.svg" id="twice"><p id="twice">x</p>'
        "</main></body></html>"
    )
    page.route(
        "**/axe-self-test", lambda route: route.fulfill(content_type="text/html", body=bad_page)
    )
    page.goto("/axe-self-test")
    page.goto("/login")  # leaving the page waits for its result
    found = browser_errors.axe.report()
    assert any("/axe-self-test" in v and "image-alt" in v and "at img" in v for v in found)
    assert any("/axe-self-test" in v and 'id "twice" is not unique' in v for v in found)
    browser_errors.axe.violations.clear()  # found on purpose
    browser_errors.assert_none()
