"""The customer's registered information (R-62): who changes it, its rules, its history, the
notices a change sends (R-61), and invoices that keep what they were issued with."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountEntry,
    AuditEvent,
    Invoice,
    Organisation,
    OrganisationChange,
    OutboxEmail,
)
from portal.services import invoicing
from tests.factories import (
    build_world,
    enter_client,
    rows,
    signed_in_client,
    snapshot,
    view_as,
)

ALPHA = {
    "postal_code": "100-0001",
    "address": "1-1 Chiyoda, Chiyoda-ku, Tokyo",
    "phone": "03-5555-6666",
    "legal_name_kana": "アルファ",
}


@pytest.fixture
def world(app):
    world = build_world(app)
    with app.app_context():
        alpha = db.session.get(Organisation, world.org_a)
        for field, value in ALPHA.items():
            setattr(alpha, field, value)
        db.session.commit()
    return world


@pytest.fixture
def admin(app, world):
    return signed_in_client(app, world.emails["admin"])


class _FormReader(HTMLParser):
    """The information form as a browser would send it: inputs and the chosen option."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.values[attributes["name"]] = attributes.get("value") or ""
        elif tag == "select":
            self._select = attributes.get("name")
        elif tag == "option" and self._select and "selected" in attributes:
            self.values[self._select] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def form_of(page: str) -> dict[str, str]:
    start = page.index('data-testid="information-form"')
    reader = _FormReader()
    reader.feed(page[start : page.index("</form>", start)])
    values = reader.values
    values.pop("csrf_token", None)
    return values


def the_form(client, **changes: str) -> dict[str, str]:
    """What the page offers, with `changes` typed in."""
    page = client.get("/organisation")
    assert page.status_code == 200
    return {**form_of(page.get_data(as_text=True)), **changes}


def organisation(app, world, org: str = "a") -> Organisation:
    (found,) = rows(app, Organisation, id=world.org_a if org == "a" else world.org_b)
    return found


def changes_of(app, world) -> list[tuple[str, str, str]]:
    return [
        (c.field, c.old_value, c.new_value)
        for c in rows(app, OrganisationChange, organisation_id=world.org_a)
    ]


def error_of(page: str, field: str) -> str | None:
    marker = f'<p class="error" id="{field}-error">'
    if marker not in page:
        return None
    start = page.index(marker) + len(marker)
    return unescape(page[start : page.index("</p>", start)])


# --- an administrator changes it --------------------------------------------------------------


def test_r62_an_administrator_changes_the_information_normalised_and_kept_with_history(
    app, world, admin
):
    """Full-width digits, half-width kana, hiragana (readings are kept in katakana, so that
    staff's list sorts by them) and a missing hyphen are normalised; each changed field is
    one history row (who, when, old, new) and one audit event records the change."""
    form = the_form(
        admin,
        legal_name="Alpha Holdings K.K.",
        legal_name_kana="ｱﾙﾌｧほーるでぃんぐす",
        postal_code="１０００００５",
        phone="０３ー１２３４ー５６７８",
        address="2-2 Marunouchi, Chiyoda-ku, Tokyo",
    )
    response = admin.post("/organisation", data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/organisation"

    alpha = organisation(app, world)
    assert (alpha.legal_name, alpha.legal_name_kana) == (
        "Alpha Holdings K.K.",
        "アルファホールディングス",
    )
    assert (alpha.postal_code, alpha.phone) == ("100-0005", "03-1234-5678")
    assert changes_of(app, world) == [
        ("legal_name", "Alpha K.K.", "Alpha Holdings K.K."),
        ("legal_name_kana", "アルファ", "アルファホールディングス"),
        ("postal_code", "100-0001", "100-0005"),
        ("address", "1-1 Chiyoda, Chiyoda-ku, Tokyo", "2-2 Marunouchi, Chiyoda-ku, Tokyo"),
        ("phone", "03-5555-6666", "03-1234-5678"),
    ]
    for change in rows(app, OrganisationChange, organisation_id=world.org_a):
        assert change.user_id == world.ids["admin"] and change.entry_id is None
        assert change.changed_at == clock.now()
    (event,) = rows(app, AuditEvent, action="organisation_information_changed")
    assert event.user_id == world.ids["admin"] and event.organisation_id == world.org_a
    assert event.details["fields"] == [
        "legal_name",
        "legal_name_kana",
        "postal_code",
        "address",
        "phone",
    ]
    page = admin.get("/organisation").get_data(as_text=True)
    assert "The information was changed." in page
    assert 'value="Alpha Holdings K.K."' in page


def test_r61_r62_other_changes_are_one_notice_to_the_notice_address_listing_old_and_new(
    app, world, admin
):
    admin.post("/organisation", data=the_form(admin, phone="03-1111-2222", address="Osaka"))
    (notice,) = rows(app, OutboxEmail, kind="information_changed")
    assert notice.to_address == "billing@alpha.example"  # no contract contact: billing
    assert notice.is_notice and not notice.affects_contract
    assert notice.organisation_id == world.org_a and notice.locale == "ja"
    assert "03-5555-6666 → 03-1111-2222" in notice.body
    assert "1-1 Chiyoda, Chiyoda-ku, Tokyo → Osaka" in notice.body
    assert "admin" in notice.body  # who changed it
    assert rows(app, OutboxEmail, kind="email_changed") == []


def test_r62_an_unchanged_form_records_nothing(app, world, admin):
    form = the_form(admin, phone=" 03-5555-6666 ")  # as registered, but for the spaces
    before = snapshot(app)
    response = admin.post("/organisation", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert "Nothing changed." in response.get_data(as_text=True)
    assert snapshot(app) == before


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("legal_name", "", "This field is required."),
        ("legal_name", "x" * 201, "Use at most 200 characters."),
        ("legal_name_kana", "阿瑠破", "Write the company name in kana, without kanji."),
        ("postal_code", "100-001", "Enter the postal code as seven digits, e.g. 100-0001."),
        ("postal_code", "1000-001", "Enter the postal code as seven digits, e.g. 100-0001."),
        ("phone", "03-1234-567a", "Enter the phone number in digits, hyphens, +"),
        ("phone", "03-12-34", "Enter the phone number in digits, hyphens, +"),
        ("phone", "03+1234-5678", "Enter the phone number in digits, hyphens, +"),
        ("billing_email", "", "This field is required."),
        ("billing_email", "billing.alpha.example", "Enter a valid e-mail address."),
        ("contract_contact_email", "someone@", "Enter a valid e-mail address."),
        ("locale", "fr", "Choose Japanese or English."),
    ],
)
def test_r62_bad_input_is_shown_next_to_its_field_kept_and_changes_nothing(
    app, world, admin, field, typed, message
):
    form = the_form(admin, **{field: typed, "address": "Osaka"})
    before = snapshot(app)
    response = admin.post("/organisation", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_of(page, field).startswith(message)
    assert 'value="Osaka"' in page  # the rest of what was typed is kept
    if field != "locale" and typed:
        assert f'value="{typed}"' in page
    assert snapshot(app) == before


def test_r62_every_bad_field_is_named_at_once(app, world, admin):
    form = the_form(admin, postal_code="12", phone="phone", billing_email="x")
    page = admin.post("/organisation", data=form).get_data(as_text=True)
    assert all(error_of(page, f) for f in ("postal_code", "phone", "billing_email"))
    assert error_of(page, "legal_name") is None


def test_r62_information_entered_before_the_rules_does_not_block_other_changes(app, world, admin):
    """A postal code stored without its hyphen at onboarding is kept as it is while another
    field changes; typed anew, it follows the rules."""
    with app.app_context():
        db.session.get(Organisation, world.org_a).postal_code = "1000001"
        db.session.commit()
    assert (
        admin.post("/organisation", data=the_form(admin, phone="03-1111-2222")).status_code == 302
    )
    assert organisation(app, world).postal_code == "1000001"
    assert changes_of(app, world) == [("phone", "03-5555-6666", "03-1111-2222")]


# --- e-mail addresses (R-61, R-62) ----------------------------------------------------------


def test_r62_a_changed_billing_email_is_announced_to_the_old_and_the_new_address(app, world, admin):
    response = admin.post(
        "/organisation", data=the_form(admin, billing_email=" Accounts@Alpha.example ")
    )
    assert response.status_code == 302
    assert organisation(app, world).billing_email == "accounts@alpha.example"
    notices = rows(app, OutboxEmail, kind="email_changed")
    assert sorted(n.to_address for n in notices) == [
        "accounts@alpha.example",
        "billing@alpha.example",
    ]
    for notice in notices:
        assert notice.is_notice and notice.organisation_id == world.org_a
        assert "billing@alpha.example → accounts@alpha.example" in notice.body
    assert rows(app, OutboxEmail, kind="information_changed") == []
    assert changes_of(app, world) == [
        ("billing_email", "billing@alpha.example", "accounts@alpha.example")
    ]


def test_r62_several_addresses_changed_at_once_each_address_told_once(app, world, admin):
    with app.app_context():
        db.session.get(Organisation, world.org_a).contract_contact_email = "old@alpha.example"
        db.session.commit()
    form = the_form(
        admin,
        contract_contact_email="new@alpha.example",
        operations_contact_email="ops@alpha.example",  # none before: only the new is told
    )
    admin.post("/organisation", data=form)
    notices = rows(app, OutboxEmail, kind="email_changed")
    assert sorted(n.to_address for n in notices) == [
        "new@alpha.example",
        "old@alpha.example",
        "ops@alpha.example",
    ]


def test_r62_the_notices_are_in_the_language_chosen_in_the_same_form(app, world, admin):
    assert organisation(app, world).locale == "ja"
    form = the_form(admin, locale="en", billing_email="accounts@alpha.example")
    assert admin.post("/organisation", data=form).status_code == 302
    notices = rows(app, OutboxEmail, organisation_id=world.org_a)
    assert {(n.kind, n.locale) for n in notices} == {
        ("email_changed", "en"),
        ("information_changed", "en"),
    }
    (information,) = [n for n in notices if n.kind == "information_changed"]
    assert "日本語 → English" in information.body
    assert ("locale", "ja", "en") in changes_of(app, world)


# --- who may ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "partner"), [("sales_agent", "Sales Agent Co."), ("agency_agent", "Agency Co.")]
)
def test_r71_agents_change_their_clients_information_and_the_history_names_their_partner(
    app, world, admin, agent, partner
):
    client = signed_in_client(app, world.emails[agent])
    enter_client(client, world.org_a)
    response = client.post("/organisation", data=the_form(client, phone="03-9999-0000"))
    assert response.status_code == 302
    (change,) = rows(app, OrganisationChange, organisation_id=world.org_a)
    (entry,) = rows(app, AccountEntry, user_id=world.ids[agent])
    assert (change.user_id, change.entry_id) == (world.ids[agent], entry.id)
    (event,) = rows(app, AuditEvent, action="organisation_information_changed")
    assert event.entry_id == entry.id
    (notice,) = rows(app, OutboxEmail, kind="information_changed")
    assert f"agent ({partner})" in notice.body
    # The customer's administrator sees that an agent did it, and of which partner.
    history = admin.get("/organisation/history").get_data(as_text=True)
    assert f"agent ({partner})" in history
    assert "03-5555-6666" in history and "03-9999-0000" in history


def test_r62_members_read_the_information_but_cannot_change_it(app, world):
    member = signed_in_client(app, world.emails["member"])
    page = member.get("/organisation").get_data(as_text=True)
    assert 'data-testid="read-only"' in page
    assert 'data-testid="information-form"' not in page
    assert 'data-testid="value-phone">03-5555-6666<' in page
    assert member.get("/organisation/history").status_code == 200
    before = snapshot(app)
    form = {**ALPHA, "legal_name": "Taken Over K.K.", "billing_email": "x@evil.example"}
    assert member.post("/organisation", data=form).status_code == 403
    assert snapshot(app) == before


def test_r72_staff_viewing_as_the_customer_read_it_and_change_nothing(app, world, admin):
    staff = signed_in_client(app, world.emails["support"])
    view_as(staff, world.org_a, world.ids["admin"])
    page = staff.get("/organisation").get_data(as_text=True)
    assert 'data-testid="read-only"' in page
    assert "viewing as the customer" in page
    assert 'data-testid="information-form"' not in page
    assert staff.get("/organisation/history").status_code == 200
    # Even a form that an administrator could send is refused.
    form = the_form(admin, legal_name="Taken Over K.K.")
    before = snapshot(app, skip=("audit_events",))
    assert staff.post("/organisation", data=form).status_code == 403
    assert snapshot(app, skip=("audit_events",)) == before
    assert rows(app, AuditEvent, action="organisation_information_changed") == []


def test_r70_each_administrator_changes_only_their_own_organisation(app, world, admin):
    other = signed_in_client(app, world.emails["other_admin"])
    page = other.get("/organisation").get_data(as_text=True)
    assert "Beta K.K." in page and "Alpha K.K." not in page
    response = other.post("/organisation", data=the_form(other, phone="06-1111-2222"))
    assert response.status_code == 302
    assert organisation(app, world, "b").phone == "06-1111-2222"
    assert organisation(app, world).phone == "03-5555-6666"
    assert "06-1111-2222" not in admin.get("/organisation/history").get_data(as_text=True)


# --- at the same time ---------------------------------------------------------------------


def test_r62_the_same_change_sent_six_times_at_once_is_recorded_once(app, world):
    """The database decides: the conditional update lets one submission through; the others
    find the change already made and record nothing."""
    clients = [signed_in_client(app, world.emails["admin"]) for _ in range(6)]
    form = the_form(clients[0], phone="03-7777-8888", billing_email="accounts@alpha.example")
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return client.post("/organisation", data=form)

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = [r.status_code for r in pool.map(submit, clients)]

    assert statuses == [302] * len(clients)
    assert changes_of(app, world) == [
        ("phone", "03-5555-6666", "03-7777-8888"),
        ("billing_email", "billing@alpha.example", "accounts@alpha.example"),
    ]
    assert len(rows(app, OutboxEmail, kind="email_changed")) == 2  # the old and the new, once
    assert len(rows(app, OutboxEmail, kind="information_changed")) == 1
    assert len(rows(app, AuditEvent, action="organisation_information_changed")) == 1


def test_r62_a_stale_form_is_refused_with_the_current_values_and_can_then_be_saved(
    app, world, admin
):
    other_admin_tab = the_form(admin)  # opened before the change below
    assert (
        admin.post("/organisation", data=the_form(admin, phone="03-1111-2222")).status_code == 302
    )

    stale = admin.post("/organisation", data={**other_admin_tab, "phone": "03-3333-4444"})
    assert stale.status_code == 409
    page = stale.get_data(as_text=True)
    assert "Someone changed the information while you were editing it." in page
    assert "Changed meanwhile to “03-1111-2222”" in error_of(page, "phone")
    assert changes_of(app, world) == [("phone", "03-5555-6666", "03-1111-2222")]
    assert organisation(app, world).phone == "03-1111-2222"

    # The refused page is now based on the current values: saving it is a deliberate choice.
    again = admin.post("/organisation", data=form_of(page))
    assert again.status_code == 302
    assert changes_of(app, world)[-1] == ("phone", "03-1111-2222", "03-3333-4444")


def test_r62_a_stale_form_changing_other_fields_keeps_the_change_made_meanwhile(app, world, admin):
    older_tab = the_form(admin)
    admin.post("/organisation", data=the_form(admin, phone="03-1111-2222"))
    response = admin.post("/organisation", data={**older_tab, "address": "Osaka"})
    assert response.status_code == 302
    alpha = organisation(app, world)
    assert (alpha.phone, alpha.address) == ("03-1111-2222", "Osaka")


def test_r62_a_form_that_does_not_say_what_it_was_based_on_changes_nothing(app, world, admin):
    form = the_form(admin, phone="03-1111-2222")
    del form["based_on"]
    before = snapshot(app)
    response = admin.post("/organisation", data=form)
    assert response.status_code == 409
    assert snapshot(app) == before
    assert (
        admin.post("/organisation", data=form_of(response.get_data(as_text=True))).status_code
        == 302
    )
    assert organisation(app, world).phone == "03-1111-2222"


# --- the history --------------------------------------------------------------------------


def test_r62_the_history_shows_tokyo_time_who_what_and_pages_newest_first(app, world, admin):
    with app.app_context():
        start = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
        db.session.add_all(
            OrganisationChange(
                organisation_id=world.org_a,
                field="phone",
                old_value=f"03-0000-{n:04d}",
                new_value=f"03-0000-{n + 1:04d}",
                changed_at=start + timedelta(hours=n),
                user_id=world.ids["admin"],
            )
            for n in range(55)
        )
        db.session.commit()
    first = admin.get("/organisation/history").get_data(as_text=True)
    assert first.count('data-testid="change-phone"') == 50
    assert "03-0000-0055" in first and "03-0000-0004" not in first  # newest first
    assert "January 3, 2027 15:00" in first  # 06:00 UTC, in Tokyo time
    assert 'href="/organisation/history?page=2"' in first
    second = admin.get("/organisation/history?page=2").get_data(as_text=True)
    assert second.count('data-testid="change-phone"') == 5
    assert "03-0000-0000" in second
    assert 'href="/organisation/history?page=1"' in second


# --- issued invoices keep what they were issued with ------------------------------------------


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))  # 10:00 Tokyo


def recipient_of(page: str) -> str:
    """The invoice page's "addressed to", as text."""
    start = page.index('data-testid="recipient">') + len('data-testid="recipient">')
    html = page[start : page.index("</dd>", start)]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(BytesIO(pdf)).pages)


def test_r62_issued_invoices_keep_the_name_and_address_they_were_issued_with(app, world):
    _at(date(2026, 11, 5))
    with app.app_context():
        invoicing.issue_invoices(date(2026, 11, 5))
        first_id = db.session.scalar(
            sa.select(Invoice.id).where(Invoice.organisation_id == world.org_a)
        )
    admin = signed_in_client(app, world.emails["admin"])
    first_pdf = admin.get(f"/invoices/{first_id}/pdf").data  # stored as issued

    form = the_form(
        admin,
        legal_name="Alpha Holdings K.K.",
        postal_code="530-0001",
        address="3-3 Umeda, Kita-ku, Osaka",
    )
    assert admin.post("/organisation", data=form).status_code == 302

    recipient = recipient_of(admin.get(f"/invoices/{first_id}").get_data(as_text=True))
    assert recipient == "Alpha K.K. 〒100-0001 1-1 Chiyoda, Chiyoda-ku, Tokyo"
    again = admin.get(f"/invoices/{first_id}/pdf").data
    assert again == first_pdf
    text = _pdf_text(again)
    assert "Alpha K.K." in text and "Chiyoda" in text and "Umeda" not in text

    _at(date(2026, 11, 21))
    with app.app_context():
        invoicing.issue_invoices(date(2026, 11, 21))
        next_id = db.session.scalar(
            sa.select(Invoice.id).where(
                Invoice.organisation_id == world.org_a, Invoice.billing_month == "2026-12"
            )
        )
    admin = signed_in_client(app, world.emails["admin"])
    recipient = recipient_of(admin.get(f"/invoices/{next_id}").get_data(as_text=True))
    assert recipient == "Alpha Holdings K.K. 〒530-0001 3-3 Umeda, Kita-ku, Osaka"
    text = _pdf_text(admin.get(f"/invoices/{next_id}/pdf").data)
    assert "Alpha Holdings K.K." in text and "Umeda" in text and "Chiyoda" not in text


def test_r61_r62_staff_see_the_latest_notices_and_changes_on_the_organisations_page(
    app, world, admin
):
    """The back office sees what the customer was told and what changed, without viewing as
    the customer; the notices are listed, not opened (their pages are the customer's)."""
    response = admin.post("/organisation", data=the_form(admin, phone="03-9999-0000"))
    assert response.status_code == 302
    support = signed_in_client(app, world.emails["support"])
    page = support.get(f"/staff/organisations/{world.org_a}").get_data(as_text=True)
    history = page[page.index('data-testid="history"') :]
    assert "03-9999-0000" in history and "admin" in history
    (notice,) = rows(app, OutboxEmail, kind="information_changed")
    notices = page[page.index('data-testid="notices"') :]
    assert f'data-testid="notice-{notice.id}"' in notices and notice.subject in notices
    assert f"/notices/{notice.id}" not in page
    other = support.get(f"/staff/organisations/{world.org_b}").get_data(as_text=True)
    assert "03-9999-0000" not in other and f'data-testid="notice-{notice.id}"' not in other
