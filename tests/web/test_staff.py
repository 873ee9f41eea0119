"""Provider staff: finding organisations, onboarding one from its application, any contract."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from html import unescape

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import (
    Contract,
    CustomerRole,
    Organisation,
    OutboxEmail,
    PartnerAssignment,
    SalesChannel,
    User,
)
from tests.factories import (
    add_organisation,
    application_form,
    build_world,
    row_counts,
    rows,
    sign_in,
    signed_in_client,
)


@pytest.fixture
def world(app):
    world = build_world(app)
    with app.app_context():
        alpha = db.session.get(Organisation, world.org_a)
        alpha.legal_name_kana = "アルファ"
        alpha.phone = "03-5555-6666"
        beta = db.session.get(Organisation, world.org_b)
        beta.legal_name_kana = "ベータ"
        beta.phone = "06-7777-8888"
        db.session.commit()
    return world


@pytest.fixture
def staff(app, world):
    return signed_in_client(app, world.emails["support"])


def _found(page: str) -> set[str]:
    return set(re.findall(r'<a href="/staff/organisations/\d+">([^<]+)</a>', page))


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return match.group(1) if match else None


# --- finding organisations ------------------------------------------------------------------


def test_search_by_name_kana_email_phone_and_number(app, world, staff):
    assert str(world.org_b) not in "03-5555-6666"  # the number search must not hit A's phone
    searches = {
        "": {"Alpha K.K.", "Beta K.K."},
        "alpha": {"Alpha K.K."},
        "ALPHA k.k.": {"Alpha K.K."},
        "ベータ": {"Beta K.K."},
        "billing@beta": {"Beta K.K."},
        "5555-66": {"Alpha K.K."},
        str(world.org_b): {"Beta K.K."},
        "no such company": set(),
    }
    for text, expected in searches.items():
        response = staff.get("/staff/organisations", query_string={"q": text})
        assert response.status_code == 200, text
        assert _found(response.get_data(as_text=True)) == expected, text


def test_htmx_search_answers_only_the_rows(app, world, staff):
    response = staff.get(
        "/staff/organisations", query_string={"q": "beta"}, headers={"HX-Request": "true"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in page and "<body" not in page
    assert page.lstrip().startswith('<div id="organisation-rows"')  # the rows and their pages
    assert _found(page) == {"Beta K.K."}
    full = staff.get("/staff/organisations", query_string={"q": "beta"}).get_data(as_text=True)
    assert "<html" in full and 'id="organisation-rows"' in full


def test_billing_staff_can_list_but_not_onboard(app, world):
    billing = app.test_client()
    sign_in(app, billing, world.emails["billing"])
    before = row_counts(app)

    assert billing.get("/staff/organisations").status_code == 200
    assert billing.get("/staff/organisations/new").status_code == 403
    response = billing.post(
        "/staff/organisations/new", data=application_form(world.ids["plan_small"])
    )

    assert response.status_code == 403
    assert row_counts(app) == before
    assert 'href="/staff/organisations/new"' not in billing.get("/staff/organisations").get_data(
        as_text=True
    )


# --- onboarding -----------------------------------------------------------------------------


def _onboard(client, form: dict[str, object], *, confirmed: str | None = "yes"):
    """Send the application as confirmed on its confirmation page (or, with None, as the
    onboarding form sends it first)."""
    data = form if confirmed is None else {**form, "confirmed": confirmed}
    return client.post("/staff/organisations/new", data=data)


def _summary(page: str) -> str:
    match = re.search(r'data-testid="confirm-summary">(.*?)</ul>', page, re.S)
    assert match, "no confirmation page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def _onboarded(app, email: str) -> tuple[Organisation, User, Contract]:
    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.email == email))
        organisation = admin.organisation
        (contract,) = db.session.scalars(
            sa.select(Contract).where(Contract.organisation_id == organisation.id)
        )
        db.session.expunge_all()
        return organisation, admin, contract


def test_onboarding_asks_first_with_what_it_will_create(app, world, staff):
    """Onboarding records a contract and e-mails an invitation: the confirmation page says
    so, from the application as typed, and changes nothing; going back keeps the form."""
    form = application_form(
        world.ids["plan_large"], legal_name_kana="がんま", service_start="2027-03-05"
    )
    before = row_counts(app)

    asked = _onboard(staff, form, confirmed=None)

    assert asked.status_code == 200
    summary = _summary(asked.get_data(as_text=True))
    assert "Create the organisation Gamma K.K. (ガンマ)." in summary  # the reading as kept
    assert "¥100,000 a month, from March 5, 2027; billing months start on day 21." in summary
    assert "Sold via: Direct." in summary
    assert "Gamma Admin (admin@gamma.example) becomes its first administrator" in summary
    assert "cannot be undone" in summary
    assert row_counts(app) == before
    back = _onboard(staff, form, confirmed="edit")
    assert back.status_code == 200
    assert 'value="Gamma K.K."' in back.get_data(as_text=True)
    assert row_counts(app) == before


def test_onboarding_creates_organisation_administrator_and_first_contract(app, world, staff):
    form = application_form(
        world.ids["plan_large"],
        admin_email="Admin@Gamma.example",
        service_start="2027-03-05",
        anchor_day=15,
    )

    response = _onboard(staff, form)

    # Post/redirect/get: the new organisation's page, with what was done.
    organisation, admin, contract = _onboarded(app, "admin@gamma.example")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/organisations/{organisation.id}"
    page = unescape(staff.get(response.headers["Location"]).get_data(as_text=True))
    assert organisation.legal_name == "Gamma K.K."
    assert organisation.legal_name_kana == "ガンマ"
    assert organisation.sales_channel == SalesChannel.DIRECT
    assert admin.customer_role == CustomerRole.ADMINISTRATOR
    assert not admin.password_hash.startswith("$argon2")  # no password until the invitation
    # the contract keeps the plan's price: the agreed anchor day.
    assert contract.monthly_fee == 100_000
    assert contract.minimum_months == 12
    assert contract.service_start == date(2027, 3, 5)
    assert contract.anchor_day == 15
    assert contract.calendar(date(2027, 3, 5)).term_anchor == date(2027, 3, 15)
    assert contract.sales_channel == SalesChannel.DIRECT
    assert contract.partner_id is None and contract.agency_periods_granted is None
    with app.app_context():
        assert [e.kind for e in db.session.get(Contract, contract.id).events] == ["created"]
    # no password is shown to staff; the administrator is invited by e-mail.
    assert "Gamma K.K. is onboarded" in page
    assert f"Contract no. {contract.id} starts on March 5, 2027." in page
    assert "An invitation was e-mailed to admin@gamma.example." in page
    assert "until March 8, 2027 10:00" in page  # seven days, in Tokyo time
    (invitation,) = rows(app, OutboxEmail, kind="invitation")
    assert invitation.to_address == "admin@gamma.example" and invitation.sensitive
    assert "/invitation/" in invitation.body


def test_onboarding_through_an_agency_gives_an_agency_contract(app, world, staff):
    """R-06: an agency contract runs in 6-month periods; the first is granted at sign-up."""
    form = application_form(world.ids["plan_small"], partner_id=world.ids["agency_partner"])

    assert _onboard(staff, form).status_code == 302

    organisation, _, contract = _onboarded(app, "admin@gamma.example")
    assert organisation.sales_channel == SalesChannel.AGENCY
    assert contract.sales_channel == SalesChannel.AGENCY
    assert contract.partner_id == world.ids["agency_partner"]
    assert contract.agency_periods_granted == 1
    with app.app_context():
        assert db.session.get(
            PartnerAssignment, (world.ids["agency_partner"], organisation.id)
        )  # the agency's agents now see the new client
    agent = app.test_client()
    sign_in(app, agent, world.emails["agency_agent"])
    assert "Gamma K.K." in agent.get("/partner/clients").get_data(as_text=True)


def test_onboarding_through_a_sales_agent(app, world, staff):
    form = application_form(world.ids["plan_small"], partner_id=world.ids["sales_partner"])
    assert "Sold via: " in _summary(_onboard(staff, form, confirmed=None).get_data(as_text=True))
    assert _onboard(staff, form).status_code == 302
    _, _, contract = _onboarded(app, "admin@gamma.example")
    assert contract.sales_channel == SalesChannel.SALES_AGENT
    assert contract.agency_periods_granted is None


def test_onboarding_with_only_the_required_fields(app, world, staff):
    """A client that leaves out the optional text fields (not even empty) is served too."""
    required = ("legal_name", "billing_email", "admin_name", "admin_email", "plan_id", "locale")
    form = {k: v for k, v in application_form(world.ids["plan_small"]).items() if k in required}
    form.update(service_start="2027-03-05", anchor_day=21)

    assert _onboard(staff, form, confirmed=None).status_code == 200
    assert _onboard(staff, form).status_code == 302

    organisation, _, contract = _onboarded(app, "admin@gamma.example")
    assert organisation.legal_name_kana == "" and organisation.contract_contact_email == ""
    assert contract.anchor_day == 21


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"legal_name": ""}, "legal_name"),
        ({"admin_email": "not-an-address"}, "admin_email"),
        ({"billing_email": "billing-at-gamma"}, "billing_email"),
        ({"anchor_day": 29}, "anchor_day"),
        ({"anchor_day": 0}, "anchor_day"),
        ({"admin_email": "ADMIN@alpha.example"}, "admin_email"),  # already a user
        ({"service_start": "2027-02-30"}, "service_start"),
        ({"plan_id": 987_654}, "plan_id"),
        ({"legal_name_kana": "株式会社ガンマ"}, "legal_name_kana"),
    ],
)
def test_bad_applications_are_refused_next_to_the_field(app, world, staff, override, field):
    """Refused before the confirmation page, and when sent confirmed."""
    form = application_form(world.ids["plan_small"], **override)
    before = row_counts(app)

    assert _onboard(staff, form).status_code == 422
    response = _onboard(staff, form, confirmed=None)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert _error(page, field), f"no message next to {field}"
    assert row_counts(app) == before
    # What was typed is kept, so staff correct one field instead of typing the form again.
    for name in ("legal_name", "legal_name_kana", "address", "billing_email", "admin_email"):
        if name not in override:
            assert f'value="{form[name]}"' in page, name
    if field in ("admin_email", "billing_email"):
        assert f'value="{override[field]}"' in page


def test_onboarding_duplicate_admin_email_creates_nothing_twice(app, world, staff):
    form = application_form(world.ids["plan_small"])
    assert _onboard(staff, form).status_code == 302
    before = row_counts(app)
    again = _onboard(staff, form)  # e.g. the confirmation sent again
    assert again.status_code == 422
    assert row_counts(app) == before


def test_the_same_application_sent_at_once_is_onboarded_once(app, world):
    """Six identical confirmations in parallel: the database lets exactly one through, the
    others answer 422 with the message next to the e-mail field, never a server error."""
    form = application_form(world.ids["plan_small"])
    clients = [signed_in_client(app, world.emails["support"]) for _ in range(6)]
    before = row_counts(app)
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return _onboard(client, form)

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(r.status_code for r in pool.map(submit, clients))

    assert statuses == [302] + [422] * (len(clients) - 1)
    after = row_counts(app)
    assert after["organisations"] == before["organisations"] + 1
    assert after["contracts"] == before["contracts"] + 1


# --- any contract ---------------------------------------------------------------------------


def test_staff_open_any_contract(app, world, staff):
    for contract_id in (world.contract_a, world.contract_b):
        response = staff.get(f"/staff/contracts/{contract_id}")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert f'data-testid="calendar-{contract_id}"' in page
        assert 'data-testid="monthly-fee"' in page
    organisation = staff.get(f"/staff/organisations/{world.org_b}").get_data(as_text=True)
    assert f'href="/staff/contracts/{world.contract_b}"' in organisation
    assert "admin@beta.example" in organisation


def test_organisations_are_listed_in_the_order_of_their_readings(app, world, staff):
    """Staff look names up by their reading (kana), not by character code: 青木 (アオキ)
    before Alpha (アルファ) before 山田 (ヤマダ); names without a reading come last."""
    with app.app_context():
        for name, kana, domain in (
            ("山田商事株式会社", "ヤマダショウジ", "yamada.example"),
            ("青木工業株式会社", "アオキコウギョウ", "aoki.example"),
            ("Zeta K.K.", "", "zeta.example"),
        ):
            add_organisation(name, domain).legal_name_kana = kana
        db.session.commit()

    page = staff.get("/staff/organisations").get_data(as_text=True)

    listed = re.findall(r'<a href="/staff/organisations/\d+">([^<]+)</a>', page)
    assert listed == [
        "青木工業株式会社",
        "Alpha K.K.",
        "Beta K.K.",
        "山田商事株式会社",
        "Zeta K.K.",
    ]


@pytest.mark.parametrize("q", ["a\x00b", "%", "_", "9" * 30, "１２"])
def test_odd_searches_find_nothing_extra_and_never_fail(app, world, q):
    """A NUL byte, LIKE wildcards and numbers no id can be are searched as plain text."""
    support = signed_in_client(app, world.emails["support"])
    response = support.get("/staff/organisations", query_string={"q": q})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Alpha K.K." not in page and "Beta K.K." not in page


def test_a_search_of_only_a_nul_byte_is_an_empty_search(app, world):
    support = signed_in_client(app, world.emails["support"])
    response = support.get("/staff/organisations", query_string={"q": "\x00"})
    assert response.status_code == 200
    assert "Alpha K.K." in response.get_data(as_text=True)
