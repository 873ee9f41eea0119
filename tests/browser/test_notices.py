"""Issue 5's journeys: e-mail that reaches a real SMTP server (aiosmtpd on loopback), delivered
by the outbox worker as `flask portal send-mail` does (R-60..R-63)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Organisation, Service, TermsConsent, TermsVersion
from tests.browser.helpers import nav_link, send_mail, sign_in, sign_out
from tests.factories import build_world, rows
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a fresh passphrase for alpha"


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def live_config(smtp: SmtpSink) -> dict[str, object]:
    return smtp.config()


def test_administrator_changes_the_billing_e_mail_and_both_addresses_are_told(
    live_server, page: Page, smtp: SmtpSink, browser_errors
):
    """R-62: the change is kept with who and when; the old and the new address both receive
    the notice (R-61), which the organisation then finds under Notices, with its time sent."""
    app = live_server.app
    world = build_world(app)
    (alpha,) = rows(app, Organisation, id=world.org_a)
    old, new = alpha.billing_email, "invoices@alpha.example"

    sign_in(page, world.emails["admin"])
    nav_link(page, "/organisation").click()
    page.locator("#billing_email").fill(new)
    with page.expect_navigation():
        page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".flash-success")).to_contain_text("old and the new e-mail address")
    expect(page.locator("#billing_email")).to_have_value(new)

    page.get_by_test_id("history-link").click()
    history = page.locator("main table")
    expect(history).to_contain_text(old)
    expect(history).to_contain_text(new)
    expect(history).to_contain_text("admin")

    assert send_mail(app).sent >= 2
    (to_old,) = [m for m in smtp.to(old) if m["X-Portal-Kind"] == "email_changed"]
    (to_new,) = [m for m in smtp.to(new) if m["X-Portal-Kind"] == "email_changed"]
    assert to_old["Subject"] == to_new["Subject"]
    assert to_old["Message-ID"] != to_new["Message-ID"]
    for message in (to_old, to_new):
        assert old in message.get_content() and new in message.get_content()

    nav_link(page, "/notices").click()
    # One notice, once, to both addresses; sent, with its time.
    rows_shown = page.locator("main tbody tr", has_text=to_old["Subject"])
    expect(rows_shown).to_have_count(1)
    expect(rows_shown.get_by_test_id("recipient")).to_have_text([old, new])
    expect(rows_shown).not_to_contain_text("Waiting to be sent")
    browser_errors.assert_none()


def test_administrator_consents_to_a_new_version_and_the_banner_goes(
    live_server, page: Page, browser_errors
):
    """R-60: staff published a version (its e-mail goes to the organisation); the
    administrator reads it with what changed, consents, and the banner is gone."""
    app = live_server.app
    world = build_world(app)
    with app.app_context():
        service_id = db.session.scalar(sa.select(Service.id).where(Service.code == "image_works"))
        for number, effective_on, extra in (
            (1, date(2026, 4, 1), ""),
            (2, date(2027, 4, 1), "\nArt. 19-2 Using the service after the date is consent."),
        ):
            db.session.add(
                TermsVersion(
                    service_id=service_id,
                    version=number,
                    title_ja=f"IMAGE WORKS 利用規約 第{number}版",
                    title_en=f"IMAGE WORKS Terms of Service v{number}",
                    body_ja="第1条 適用\n第19条 改訂は事前に通知します。",
                    body_en="Art. 1 Scope\nArt. 19 Revisions are notified in advance." + extra,
                    effective_on=effective_on,
                )
            )
        db.session.commit()

    sign_in(page, world.emails["admin"])
    banner = page.get_by_test_id("terms-banner")
    expect(banner).to_contain_text("April 1, 2027")
    banner.get_by_role("link", name="Read and consent").click()
    expect(page.get_by_test_id("terms-diff")).to_contain_text("Art. 19-2")
    page.get_by_label("I have read and agree to these terms").check()
    with page.expect_navigation():
        page.get_by_test_id("consent-form").get_by_role("button", name="Consent").click()
    expect(page.get_by_test_id("consent-state")).to_contain_text("Explicit")
    expect(page.get_by_test_id("terms-banner")).to_have_count(0)
    page.get_by_role("link", name="Contracts").click()
    expect(page.get_by_test_id("terms-banner")).to_have_count(0)

    # Version 1 is in force: the first use recorded deemed consent; version 2 is explicit.
    number = {v.id: v.version for v in rows(app, TermsVersion)}
    consents = {number[c.terms_version_id]: c for c in rows(app, TermsConsent)}
    assert consents[1].kind == "deemed"
    assert (consents[2].kind, consents[2].user_id) == ("explicit", world.ids["admin"])
    assert consents[2].ip == "127.0.0.1"
    browser_errors.assert_none()


def test_a_user_resets_the_password_from_the_e_mailed_link(
    live_server, page: Page, smtp: SmtpSink, browser_errors
):
    """R-63: the link arrives by e-mail, works once, and the new password signs in."""
    app = live_server.app
    world = build_world(app)
    email = world.emails["admin"]

    page.goto("/login")
    page.get_by_role("link", name=re.compile("Forgot your password|パスワードをお忘れ")).click()
    page.locator("#email").fill(email)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    assert send_mail(app).sent == 1
    (message,) = smtp.to(email)
    link = re.search(r"https?://\S+/password-reset/\S+", message.get_content()).group(0)
    page.goto(link.replace(app.config["BASE_URL"].rstrip("/"), live_server.url))
    page.locator("#new_password").fill(NEW_PASSWORD)
    page.locator("#confirm").fill(NEW_PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_test_id("signed-in-as")).to_be_visible()
    sign_out(page)
    browser_errors.assert_none()
    # The link worked once: opening it again says so (410 Gone).
    again = page.request.get(link.replace(app.config["BASE_URL"].rstrip("/"), live_server.url))
    assert again.status == 410 and re.search("already used|使用済み", again.text())


def test_administrator_sees_a_new_token_once_and_confirms_revoking_it_and_removing_a_user(
    live_server, page: Page, browser_errors
):
    """A new API token is shown on the page its creation leads to, once (a reload shows it
    no more and creates nothing); revoking the token and removing a user each ask first."""
    app = live_server.app
    world = build_world(app)
    sign_in(page, world.emails["admin"])
    nav_link(page, "/account/api-tokens").click()
    page.locator("#name").fill("ERP")
    with page.expect_navigation():
        page.get_by_role("button", name="Create a token").click()
    expect(page).to_have_url(re.compile(r"/account/api-tokens$"))
    expect(page.get_by_test_id("token-value")).to_contain_text("ptk_")
    page.reload()
    expect(page.get_by_test_id("token-value")).to_have_count(0)
    expect(page.get_by_test_id("tokens").locator("tbody tr")).to_have_count(1)

    with page.expect_navigation():
        page.get_by_test_id("tokens").get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("never works again")
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/account/api-tokens$"))
    expect(page.get_by_test_id("tokens")).to_contain_text("Revoked")

    nav_link(page, "/organisation/users").click()
    member = page.get_by_test_id(f"user-{world.ids['member']}")
    with page.expect_navigation():
        member.get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("cannot be undone")
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/organisation/users$"))
    expect(page.get_by_test_id(f"user-{world.ids['member']}")).to_contain_text("Removed")
    browser_errors.assert_none()
