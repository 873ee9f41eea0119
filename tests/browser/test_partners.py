"""Issue 14's journeys: partners sign up clients (R-71), the client's administrator consents
himself (R-60), and an agency never sees an amount (R-71) nor owes a shortfall (R-06).

The clock is at 2027-03-01 10:00 Tokyo (W-2's notice date); e-mail goes to a real SMTP server
on loopback (aiosmtpd), delivered by one run of the scheduled send-mail.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import (
    Contract,
    Organisation,
    PartnerApplication,
    TermsConsent,
    TermsVersion,
    User,
)
from portal.permissions import Actor
from portal.services import api_tokens
from tests.browser.helpers import (
    main_navigation,
    nav_link,
    send_mail,
    sign_in,
    sign_out,
    switch_language,
)
from tests.factories import add_contract, build_world, rows
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "kirin coffee bridges at dawn"
YEN = re.compile(r"[¥￥円]")


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def live_config(smtp: SmtpSink) -> dict[str, object]:
    return smtp.config()


def terms_in_force(app, world) -> int:
    """IMAGE WORKS's terms, in force since 2026-04-01: what a new client consents to."""
    with app.app_context():
        version = TermsVersion(
            service_id=world.ids["service_image_works"],
            version=1,
            title_ja="IMAGE WORKS 利用規約",
            title_en="IMAGE WORKS Terms of Service",
            body_ja="第1条 適用",
            body_en="Art. 1 Scope",
            effective_on=date(2026, 4, 1),
        )
        db.session.add(version)
        db.session.commit()
        return version.id


def fill_application(page: Page, plan_id: int, locale: str = "en", **values: str) -> None:
    """The application form as an agent fills it in for Gamma K.K. (documents and the
    administrator's portal in `locale`)."""
    fields = {
        "legal_name": "Gamma K.K.",
        "legal_name_kana": "ガンマ",
        "postal_code": "100-0001",
        "address": "1-1 Chiyoda, Chiyoda-ku, Tokyo",
        "phone": "03-5555-6666",
        "billing_email": "billing@gamma.example",
        "admin_name": "Gamma Admin",
        "admin_email": "admin@gamma.example",
        "service_start": "2027-03-21",
        **values,
    }
    for name, value in fields.items():
        page.locator(f"#{name}").fill(value)
    page.locator("#plan_id").select_option(str(plan_id))
    page.locator("#locale").select_option(locale)
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Continue|次へ")).click()


def main_text(page: Page) -> str:
    """Everything the reader sees on the page, header and footer included."""
    return page.locator("body").inner_text()


def test_a_sales_agent_signs_up_a_client_who_consents_and_is_then_served(
    live_server, page: Page, smtp: SmtpSink, browser_errors
):
    app = live_server.app
    world = build_world(app)
    version_id = terms_in_force(app, world)

    # The sales agent applies for Gamma K.K. on the 50 GB plan; the quote has the initial fee.
    sign_in(page, world.emails["sales_agent"])
    main_navigation(page).get_by_role("link", name="Applications").click()
    expect(page).to_have_url(re.compile(r"/partner/applications$"))
    page.get_by_test_id("new-application").click()
    fill_application(page, world.ids["plan_small"])
    summary = page.get_by_test_id("confirm-summary")
    expect(summary).to_contain_text("Gamma K.K.")
    expect(page.locator("main")).to_contain_text("¥50,000")  # monthly fee and initial fee
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/partner/applications/\d+$"))
    expect(page.locator("main")).to_contain_text("Waiting for the provider")
    (application,) = rows(app, PartnerApplication)
    sign_out(page)

    # Staff approve it: asked first, then the client exists and is the partner's.
    sign_in(page, world.emails["support"])
    main_navigation(page).get_by_role("link", name="Applications").click()
    page.get_by_test_id(f"application-{application.id}").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/staff/applications/{application.id}$"))
    with page.expect_navigation():
        page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("Gamma K.K.")
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("client")).to_have_text("Gamma K.K.")
    sign_out(page)
    with app.app_context():
        gamma = db.session.scalar(
            sa.select(Organisation).where(Organisation.legal_name == "Gamma K.K.")
        )
        assert [p.id for p in gamma.partners] == [world.ids["sales_partner"]]
        contract_id = db.session.scalar(
            sa.select(Contract.id).where(Contract.organisation_id == gamma.id)
        )
    assert rows(app, TermsConsent) == []  # nobody consented for the client

    # The invited administrator chooses a password from the e-mail, signs in, is asked to
    # consent to the terms in force, and consents himself.
    assert send_mail(app).sent >= 1
    (invitation,) = smtp.to("admin@gamma.example")
    link = re.search(r"https?://\S+/invitation/\S+", invitation.get_content()).group(0)
    page.goto(link.replace(app.config["BASE_URL"].rstrip("/"), live_server.url))
    page.locator("#new_password").fill(ADMIN_PASSWORD)
    page.locator("#confirm").fill(ADMIN_PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    sign_in(page, "admin@gamma.example", ADMIN_PASSWORD)
    banner = page.get_by_test_id("terms-banner")
    expect(banner).to_be_visible()
    banner.get_by_role("link", name="Read and consent").click()
    page.get_by_label("I have read and agree to these terms").check()
    with page.expect_navigation():
        page.get_by_test_id("consent-form").get_by_role("button", name="Consent").click()
    expect(page.get_by_test_id("consent-state")).to_contain_text("Explicit")
    expect(page.get_by_test_id("terms-banner")).to_have_count(0)
    with app.app_context():
        admin_id = db.session.scalar(sa.select(User.id).where(User.email == "admin@gamma.example"))
    (consent,) = rows(app, TermsConsent)
    assert (consent.terms_version_id, consent.kind, consent.user_id) == (
        version_id,
        "explicit",
        admin_id,
    )
    sign_out(page)

    # The agent finds the new client in the worklist, acts for it and asks a quote.
    sign_in(page, world.emails["sales_agent"])
    main_navigation(page).get_by_role("link", name="Clients").click()
    page.locator("#q").fill("ガンマ")
    with page.expect_navigation():
        page.locator("form[role=search] button").click()
    client = page.get_by_test_id(f"client-{gamma.id}")
    expect(client).to_contain_text("Gamma K.K.")
    client.get_by_role("button", name="Act for this client").click()
    expect(page.get_by_test_id("entry-banner")).to_contain_text("Gamma K.K.")
    page.get_by_test_id(f"contract-{contract_id}").locator("h3 a").click()
    page.get_by_test_id("change-plan").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{contract_id}/change$"))
    expect(page.get_by_test_id("quote")).to_be_visible()
    expect(page.get_by_test_id("quote-total")).to_contain_text("¥")
    browser_errors.assert_none()


def test_an_agency_applies_and_works_without_a_yen_and_ends_a_contract_owing_no_shortfall(
    live_server, page: Page, browser_errors
):
    """R-71: an agency's application, its confirmation and its worklist show no amount, in
    Japanese; R-06/R-31: its client's contract through the agency ends owing no shortfall,
    on the page and through the API."""
    app = live_server.app
    world = build_world(app)
    contract_id = add_contract(
        app,
        world.org_a,
        service_start=date(2026, 11, 5),
        partner_id=world.ids["agency_partner"],
    )

    sign_in(page, world.emails["agency_agent"])
    switch_language(page, "ja")
    nav_link(page, "/partner/applications").click()
    page.get_by_test_id("new-application").click()
    assert not YEN.search(main_text(page)), main_text(page)
    fill_application(page, world.ids["plan_small"], "ja", legal_name="株式会社ガンマ")
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("株式会社ガンマ")
    assert not YEN.search(main_text(page)), main_text(page)
    with page.expect_navigation():
        page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/partner/applications/\d+$"))
    assert not YEN.search(main_text(page)), main_text(page)
    nav_link(page, "/partner/applications").click()
    assert not YEN.search(main_text(page)), main_text(page)

    nav_link(page, "/partner/clients").click()
    expect(page.get_by_test_id(f"client-{world.org_a}")).to_be_visible()
    assert not YEN.search(main_text(page)), main_text(page)

    # the agency contract's cancellation quote, inside the client's portal.
    page.get_by_test_id(f"client-{world.org_a}").locator("button[type=submit]").click()
    expect(page.get_by_test_id("entry-banner")).to_be_visible()
    page.goto(f"/contracts/{contract_id}")
    page.get_by_test_id("end-contract").click()
    expect(page.get_by_test_id("quote-no-minimum-term")).to_be_visible()
    expect(page.get_by_test_id("charge-shortfall")).to_have_count(0)
    expect(page.get_by_test_id("quote-unexpired-months")).to_have_count(0)
    assert not YEN.search(main_text(page)), main_text(page)

    # The API says the same to the agency's own token.
    with app.app_context():
        agent = db.session.get(User, world.ids["agency_agent"])
        _token, plain = api_tokens.create(Actor(agent), "journey", ip="127.0.0.1")
        db.session.commit()
    answer = page.request.post(
        f"/api/v1/contracts/{contract_id}/quotes",
        data={"kind": "cancellation"},
        headers={"Authorization": f"Bearer {plain}"},
    )
    assert answer.status == 200, answer.text()
    quote = answer.json()
    assert (quote["unexpired_months"], quote["minimum_term_end"]) == (0, None)
    assert quote["charges"] == []
    browser_errors.assert_none()
