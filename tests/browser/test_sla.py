"""SLA incidents and claims in the browser (R-50..R-53): W-4 from the outage staff record to
the credit on the next invoice; what an agency sees; the System information page in Japanese.

The world's contract_a is W-1's (¥50,000 a month, anchor day 21, sold through the assigned
sales agent); the clock stands at 2027-03-01 10:00 Tokyo. The users read English.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from portal.clock import TOKYO, clock
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import Invoice, Service, SlaClaim, User
from portal.permissions import Actor
from portal.services import incidents as incident_service
from portal.services.invoicing import issue_invoices
from tests.browser.helpers import (
    expect_error_page,
    main_navigation,
    screenshot_at_widths,
    sign_in,
    sign_out,
    switch_language,
)
from tests.factories import World, build_world

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# W-4: an unannounced 30-hour outage, its recovery announced 90 minutes late (Tokyo times).
W4 = {
    "kind": "outage",
    "title_ja": "ストレージ障害",
    "title_en": "Storage outage",
    "started_at": "2027-02-03T09:00",
    "ended_at": "2027-02-04T15:00",
    "occurrence_announced_at": "2027-02-03T09:20",
    "recovery_announced_at": "2027-02-04T16:30",
}
TIMES = ("started_at", "ended_at", "occurrence_announced_at", "recovery_announced_at")


def _past_invoices(app) -> None:
    """The invoices W-1's contracts had up to the clock's day, so the next one is plain."""
    with app.app_context():
        for day in (
            date(2026, 11, 5),
            date(2026, 11, 21),
            date(2026, 12, 21),
            date(2027, 1, 21),
            date(2027, 2, 21),
        ):
            issue_invoices(day)


def _record_w4(app, world: World) -> int:
    """Support staff record W-4 (journey 1 does it through the form)."""
    with app.app_context():
        service_id = db.session.scalar(sa.select(Service.id).where(Service.code == "image_works"))
        times = {name: datetime.fromisoformat(W4[name]).replace(tzinfo=TOKYO) for name in TIMES}
        facts = incident_service.IncidentFacts(
            kind=IncidentKind(W4["kind"]),
            title_ja=W4["title_ja"],
            title_en=W4["title_en"],
            service_ids=(service_id,),
            **times,
        )
        support = db.session.get(User, world.ids["support"])
        incident = incident_service.record(Actor(support), facts)
        db.session.commit()
        return incident.id


def _open_contract(page: Page, contract_id: int) -> None:
    main_navigation(page).get_by_role("link", name="Contracts", exact=True).click()
    page.get_by_test_id(f"contract-{contract_id}").locator("h3 a").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{contract_id}$"))


def _pdf_text(content: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def test_w4_from_the_outage_to_the_credit_on_the_next_invoice(
    live_server, page: Page, browser_errors
):
    """W-4: staff record the outage; the administrator sees it, files ¥2,083 + ¥1,666 and
    keeps the PDF; billing approve; the invoice of billing month 2027-04 deducts ¥3,749."""
    app = live_server.app
    world = build_world(app)
    _past_invoices(app)

    # Support staff record the incident, with the confirmation step.
    sign_in(page, world.emails["support"])
    main_navigation(page).get_by_role("link", name="Incidents", exact=True).click()
    page.get_by_test_id("new-incident").click()
    expect(page).to_have_url(re.compile(r"/staff/incidents/new$"))
    page.get_by_label("Kind").select_option(label="Outage")
    page.get_by_label("Title (Japanese)").fill(W4["title_ja"])
    page.get_by_label("Title (English)").fill(W4["title_en"])
    page.get_by_label("Services affected").select_option(label="IMAGE WORKS")
    page.get_by_label("Began (Tokyo)").fill(W4["started_at"])
    page.get_by_label("Ended (Tokyo").fill(W4["ended_at"])
    page.get_by_label("Occurrence announced (Tokyo)").fill(W4["occurrence_announced_at"])
    page.get_by_label("Recovery announced (Tokyo)").fill(W4["recovery_announced_at"])
    page.get_by_test_id("save-incident").click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("Storage outage")
    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/staff/incidents/\d+$"))
    expect(page.locator(".flash-success")).to_have_text("The incident was recorded.")
    incident_id = int(page.url.rsplit("/", 1)[1])
    sign_out(page)

    # The customer's administrator sees it under System information.
    sign_in(page, world.emails["admin"])
    main_navigation(page).get_by_role("link", name="System information").click()
    expect(page).to_have_url(re.compile(r"/system$"))
    card = page.get_by_test_id(f"incident-{incident_id}")
    expect(card).to_contain_text("Storage outage")
    expect(card).to_contain_text(f"Contract no. {world.contract_a}")
    screenshot_at_widths(page, ARTIFACTS / "sla-system")

    # The contract's claims: the computation explained, line by line (R-51, W-4).
    _open_contract(page, world.contract_a)
    page.get_by_test_id("claims-link").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/claims$"))
    option = page.get_by_test_id(f"option-{incident_id}")
    expect(option.get_by_test_id("reasoning")).to_contain_text("¥50,000 × 1,800 / 43,200 = ¥2,083")
    expect(option.get_by_test_id("reasoning")).to_contain_text(
        "Recovery not announced within 60 minutes: ¥50,000 / 30 = ¥1,666"
    )
    expect(option.get_by_test_id("amount")).to_have_text("¥3,749")
    expect(option).to_contain_text("Claimable until May 4, 2027")
    screenshot_at_widths(page, ARTIFACTS / "sla-claims")

    option.get_by_role("link", name="Claim this compensation").click()
    expect(page).to_have_url(re.compile(rf"/claims/new(/|\?incident=){incident_id}$"))
    expect(page.get_by_test_id("claim-amount")).to_have_text("¥3,749")
    page.get_by_role("button", name="File the claim").click()
    expect(page).to_have_url(re.compile(rf"/contracts/{world.contract_a}/claims/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("Your claim was filed.")
    expect(page.get_by_test_id("claimed")).to_have_text("¥3,749")
    expect(page.locator("h1")).to_contain_text("Under review")
    claim_url = page.url
    claim_id = int(claim_url.rsplit("/", 1)[1])

    # The claim as a document the customer keeps, served as stored.
    with page.expect_download() as download:
        page.get_by_test_id("claim-pdf").click()
    content = Path(download.value.path()).read_bytes()
    with app.app_context():
        claim = db.session.get(SlaClaim, claim_id)
        claim_number, digest = claim.number, claim.pdf_sha256
    assert download.value.suggested_filename == f"{claim_number}.pdf"
    assert hashlib.sha256(content).hexdigest() == digest
    assert "¥3,749" in _pdf_text(content)
    sign_out(page)

    # Billing staff approve the computed amount, asked once more.
    sign_in(page, world.emails["billing"])
    main_navigation(page).get_by_role("link", name="Incidents", exact=True).click()
    page.get_by_role("link", name="SLA claims").click()
    page.get_by_test_id("staff-claims").get_by_role("link", name=claim_number).click()
    expect(page).to_have_url(re.compile(rf"/staff/claims/{claim_id}$"))
    page.get_by_role("radio", name="Approve as computed").check()
    page.get_by_test_id("review").click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text(f"Approve {claim_number}")
    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(rf"/staff/claims/{claim_id}$"))
    expect(page.locator(".flash-success")).to_have_text(
        "The review was recorded and the customer told."
    )
    expect(page.get_by_test_id("approved")).to_have_text("¥3,749")
    sign_out(page)

    # The next monthly run: the invoice of billing month 2027-04.
    clock.set(datetime(2027, 3, 21, 1, 0, tzinfo=UTC))  # 10:00 Tokyo
    with app.app_context():
        issue_invoices(date(2027, 3, 21))
        number = db.session.scalar(
            sa.select(Invoice.number).where(
                Invoice.organisation_id == world.org_a, Invoice.billing_month == "2027-04"
            )
        )
    sign_in(page, world.emails["admin"])  # the old session idled out with the clock
    main_navigation(page).get_by_role("link", name="Invoices").click()
    page.get_by_test_id(f"invoice-{number}").get_by_role("link", name=number).click()
    lines = page.get_by_test_id("invoice-lines")
    expect(lines.locator("tbody tr")).to_have_count(2)
    expect(lines.locator("tbody tr").nth(1)).to_contain_text("−¥3,749")
    expect(page.get_by_test_id("invoice-total")).to_have_text("¥50,876")
    with page.expect_download() as download:
        page.get_by_test_id("invoice-pdf").click()
    text = _pdf_text(Path(download.value.path()).read_bytes())
    assert "3,749" in text and claim_number in text

    page.goto(claim_url)
    expect(page.locator("h1")).to_contain_text("Credited")
    expect(page.get_by_test_id("credited-invoice")).to_have_text(number)
    browser_errors.assert_none()


def test_an_agency_sees_the_incident_but_no_amount_and_cannot_claim(
    live_server, page: Page, browser_errors
):
    """R-52 reading, R-71: agencies see incidents, never amounts, and do not claim."""
    app = live_server.app
    world = build_world(app)
    incident_id = _record_w4(app, world)

    sign_in(page, world.emails["agency_agent"])
    expect(page).to_have_url(re.compile(r"/$"))  # the agent's home lists its clients
    page.get_by_test_id(f"client-{world.org_a}").get_by_role(
        "button", name="Act for this client"
    ).click()
    expect(page.get_by_test_id("entry-banner")).to_contain_text("Agency Co.")

    main_navigation(page).get_by_role("link", name="System information").click()
    expect(page.get_by_test_id(f"incident-{incident_id}")).to_contain_text("Storage outage")
    expect(page.locator("body")).not_to_contain_text("¥")

    _open_contract(page, world.contract_a)
    expect(page.get_by_test_id("notice-deadline")).to_be_visible()  # the page is there
    expect(page.get_by_test_id("claims-link")).to_have_count(0)

    expect_error_page(page, browser_errors, f"/contracts/{world.contract_a}/claims", 403)
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator("main")).to_contain_text(
        "Compensation claims are shown to the customer and its sales agents."
    )
    browser_errors.assert_none()


def test_system_information_in_japanese(live_server, page: Page, browser_errors):
    app = live_server.app
    world = build_world(app)
    incident_id = _record_w4(app, world)
    sign_in(page, world.emails["admin"])
    main_navigation(page).get_by_role("link", name="System information").click()
    expect(page.get_by_test_id(f"incident-{incident_id}")).to_contain_text("Storage outage")
    switch_language(page, "ja")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page).to_have_url(re.compile(r"/system$"))
    card = page.get_by_test_id(f"incident-{incident_id}")
    expect(card.locator("h3")).to_contain_text("ストレージ障害")
    expect(card).to_contain_text("2027年2月3日")  # the dates in Japanese
    browser_errors.assert_none()
