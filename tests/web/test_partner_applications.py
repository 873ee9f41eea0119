"""Sign-up through a partner (issue 14, item 2; R-71, R-60, R-11): an agent of a sales agent or
an agency applies for a new client, staff approve or refuse the application in the back office;
on approval the client is onboarded, assigned to the partner and its first administrator is
invited by e-mail and consents to the terms himself: agents never consent. An agency's pages and
e-mails carry no amount; the sales agent's show the initial fee and the monthly fee with tax."""

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
    ApplicationStatus,
    AuditEvent,
    ConsentKind,
    Contract,
    InetRegistration,
    Organisation,
    OutboxEmail,
    PartnerApplication,
    PartnerAssignment,
    Plan,
    PriceList,
    RegistrationChannel,
    SalesChannel,
    Service,
    TermsConsent,
    TermsVersion,
    User,
)
from tests.factories import add_plan, become, build_world, login, rows, signed_in_client

NEW_PASSWORD = "a long new passphrase for gamma"
NEUTRAL = "This address cannot be used for a new user. Ask the person for another one."


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def sales(app, world):
    """An agent of A's sales agent company, in its own pages (not inside a client)."""
    return signed_in_client(app, world.emails["sales_agent"])


@pytest.fixture
def agency(app, world):
    return signed_in_client(app, world.emails["agency_agent"])


@pytest.fixture
def staff(app, world):
    return signed_in_client(app, world.emails["support"])


def application_form(plan_id: int, /, **overrides: object) -> dict[str, object]:
    """The agent's application as a browser sends it: every field, empty ones too."""
    form: dict[str, object] = {
        "legal_name": "Gamma K.K.",
        "legal_name_kana": "ガンマ",
        "postal_code": "100-0001",
        "address": "Chiyoda-ku, Tokyo",
        "phone": "03-5555-6666",
        "billing_email": "billing@gamma.example",
        "contract_contact_name": "Gamma Contracts",
        "contract_contact_email": "contracts@gamma.example",
        "operations_contact_name": "",
        "operations_contact_email": "",
        "locale": "en",
        "admin_name": "Gamma Admin",
        "admin_email": "admin@gamma.example",
        "plan_id": plan_id,
        "service_start": "2027-04-01",
        "inet_application_contact_name": "",
        "inet_application_contact_email": "",
        "inet_operations_manager_name": "",
        "inet_operations_manager_email": "",
    }
    form.update(overrides)
    return form


def apply(client, form: dict[str, object], *, confirmed: str | None = "yes"):
    """Send the form as its confirmation page sends it again (or, with None, as the form
    page sends it first)."""
    data = dict(form)
    if confirmed is not None:
        data["confirmed"] = confirmed
    return client.post("/partner/applications/new", data=data)


def applied(app, client, form: dict[str, object]) -> int:
    """Send an application through the pages; its id."""
    response = apply(client, form)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    match = re.fullmatch(r"/partner/applications/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return unescape(match.group(1)) if match else None


def _text(page: str) -> str:
    """A page without its CSRF tokens (random: they could hold any digits)."""
    page = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", page)
    return re.sub(r"data-hx-headers='[^']*'", "", page)


def _summary(page: str) -> str:
    match = re.search(r'data-testid="confirm-summary">(.*?)</ul>', page, re.S)
    assert match, page[:3000]
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))))


def _cell(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', page)
    assert match, testid
    return unescape(match.group(1))


def _applications(app) -> list[PartnerApplication]:
    return rows(app, PartnerApplication)


def _outbox(app, kind: str) -> list[OutboxEmail]:
    return rows(app, OutboxEmail, kind=kind)


def _approve(client, application_id: int, *, confirmed: str | None = "yes"):
    data = {} if confirmed is None else {"confirmed": confirmed}
    return client.post(f"/staff/applications/{application_id}/approve", data=data)


def _refuse(client, application_id: int, reason: str, *, confirmed: str | None = "yes"):
    data = {"reason": reason}
    if confirmed is not None:
        data["confirmed"] = confirmed
    return client.post(f"/staff/applications/{application_id}/refuse", data=data)


def _organisation(app, name: str) -> Organisation | None:
    with app.app_context():
        found = db.session.scalar(sa.select(Organisation).where(Organisation.legal_name == name))
        db.session.expunge_all()
        return found


def _inet_plan(app) -> int:
    """An I-NET SERVICE plan on sale (free, R-80): the world sells only IMAGE WORKS."""
    with app.app_context():
        service = db.session.scalar(sa.select(Service).where(Service.code == "inet"))
        prices = PriceList(
            service=service, version=1, effective_from=date(2026, 1, 1), change_fee=0
        )
        plan = Plan(
            price_list=prices,
            code="inet-cards",
            name_ja="IDカード",
            name_en="ID cards",
            capacity_gb=None,
            monthly_fee=0,
            minimum_months=1,
        )
        db.session.add_all([prices, plan])
        db.session.commit()
        return plan.id


def _terms_in_force(app, world, effective_on: date = date(2027, 1, 1)) -> int:
    """IMAGE WORKS's terms, in force since before the application unless said (R-60)."""
    with app.app_context():
        version = TermsVersion(
            service_id=world.ids["service_image_works"],
            version=1,
            title_ja="IMAGE WORKS 利用規約",
            title_en="IMAGE WORKS Terms of Service",
            body_ja="第1条 本規約は本サービスに適用されます。",
            body_en="Art. 1 These terms apply to the service.",
            effective_on=effective_on,
        )
        db.session.add(version)
        db.session.commit()
        return version.id


# --- applying ----------------------------------------------------------------------------------


def test_r11_the_sales_agent_confirms_the_quote_with_the_initial_fee(app, world, sales):
    """R-71/R-11: a sales agent sees what the client will pay: the initial fee (one monthly
    fee) and the monthly fee, each with its consumption tax, before the application is sent."""
    form = application_form(world.ids["plan_small"])
    page = sales.get("/partner/applications/new")
    assert page.status_code == 200
    assert "50 GB · ¥50,000 a month" in page.get_data(as_text=True)

    asked = apply(sales, form, confirmed=None)
    assert asked.status_code == 200
    text = asked.get_data(as_text=True)
    assert "Gamma K.K. becomes a client of Sales Agent Co." in _summary(text)
    assert _cell(text, "fee-initial") == "¥50,000"
    assert _cell(text, "fee-initial-tax") == "¥5,000"
    assert _cell(text, "fee-initial-total") == "¥55,000"
    assert _cell(text, "fee-monthly") == "¥50,000"
    assert _cell(text, "fee-monthly-total") == "¥55,000"
    assert _applications(app) == []  # nothing is sent before the agent confirms

    back = apply(sales, form, confirmed="edit")
    assert back.status_code == 200
    assert 'value="Gamma K.K."' in back.get_data(as_text=True)  # as typed
    assert _applications(app) == []

    application_id = applied(app, sales, form)
    (application,) = _applications(app)
    assert application.id == application_id
    assert application.status == ApplicationStatus.PENDING
    assert application.partner_id == world.ids["sales_partner"]
    assert application.submitted_by_id == world.ids["sales_agent"]
    assert (application.legal_name, application.admin_email) == (
        "Gamma K.K.",
        "admin@gamma.example",
    )
    assert application.service_start == date(2027, 4, 1)
    assert application.anchor_day == 21
    (event,) = rows(app, AuditEvent, action="partner_application_submitted")
    assert event.user_id == world.ids["sales_agent"]
    # Support staff, who decide, are told (as of a misuse report); the alert has no amount.
    (alert,) = _outbox(app, "partner_application_submitted")
    assert alert.to_address == world.emails["support"]
    assert f"/staff/applications/{application_id}" in alert.body
    assert "¥" not in alert.body

    page = sales.get(f"/partner/applications/{application_id}").get_data(as_text=True)
    assert "Your application for Gamma K.K. was sent." in unescape(page)
    assert _cell(page, "status") == "Waiting for the provider"
    assert _cell(page, "fee-initial-total") == "¥55,000"
    listing = sales.get("/partner/applications").get_data(as_text=True)
    assert f'data-testid="application-{application_id}"' in listing
    # Every agent of the company sees it, the partner's administrator too.
    colleague = signed_in_client(app, world.emails["partner_admin"])
    assert f'data-testid="application-{application_id}"' in colleague.get(
        "/partner/applications"
    ).get_data(as_text=True)


def test_r71_an_agency_sees_no_amount_anywhere(app, world, agency, staff):
    """R-71: agencies act in sign-up but never see fees: no yen sign, no 円, no figure of the
    plan's fees on the form, the confirmation, the application's page, the list, nor in the
    e-mail telling the agent of the decision."""
    fee_figures = ("50,000", "50000", "55,000", "55000", "5,000")
    form = application_form(world.ids["plan_small"])
    pages = [
        agency.get("/partner/applications/new"),
        apply(agency, form, confirmed=None),
    ]
    application_id = applied(app, agency, form)
    pages += [
        agency.get(f"/partner/applications/{application_id}"),
        agency.get("/partner/applications"),
    ]
    assert _approve(staff, application_id).status_code == 302
    pages.append(agency.get(f"/partner/applications/{application_id}"))
    (told,) = _outbox(app, "partner_application_approved")
    assert told.to_address == world.emails["agency_agent"]
    texts = [_text(p.get_data(as_text=True)) for p in pages] + [told.subject, told.body]
    assert all(p.status_code == 200 for p in pages)
    for text in texts:
        assert "¥" not in text and "円" not in text
        assert not [figure for figure in fee_figures if figure in text]
    assert "Sales agent" not in texts[1]  # the confirmation names the agency's own company
    assert "Gamma K.K. becomes a client of Agency Co." in _summary(pages[1].get_data(as_text=True))


MISSING = {"legal_name": "", "billing_email": "", "admin_name": "", "admin_email": ""}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"legal_name": ""}, "legal_name", "This field is required."),
        ({"legal_name_kana": ""}, "legal_name_kana", "This field is required."),
        ({"address": "   "}, "address", "This field is required."),
        ({"admin_email": ""}, "admin_email", "This field is required."),
        ({"billing_email": "not an address"}, "billing_email", "Enter a valid e-mail address."),
        ({"admin_email": "admin@"}, "admin_email", "Enter a valid e-mail address."),
        ({"legal_name_kana": "大和"}, "legal_name_kana", "without kanji"),
        ({"postal_code": "12"}, "postal_code", "seven digits"),
        ({"plan_id": ""}, "plan_id", "This field is required."),
        ({"plan_id": "999999"}, "plan_id", "Choose a plan that is on sale."),
        ({"plan_id": "iw-50"}, "plan_id", "This field is required."),
        ({"service_start": ""}, "service_start", "Enter the service start date."),
        # Not in the past (Tokyo's today is 2027-03-01), at most twelve months ahead.
        ({"service_start": "2027-02-28"}, "service_start", "Choose a service start from today"),
        ({"service_start": "2028-03-02"}, "service_start", "Choose a service start from today"),
        ({"legal_name": "x" * 201}, "legal_name", "Use at most 200 characters."),
        ({"admin_name": "Gamma\x00Admin"}, "admin_name", "control characters"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_sent(
    app, world, sales, overrides, field, message
):
    for confirmed in (None, "yes"):
        response = apply(
            sales, application_form(world.ids["plan_small"], **overrides), confirmed=confirmed
        )
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert message in (_error(page, field) or ""), (field, page[:5000])
    assert _applications(app) == []
    assert _outbox(app, "partner_application_submitted") == []


def test_a_plan_no_longer_sold_is_refused(app, world, sales):
    unsold = add_plan(app, world, code="iw-old", fee=40_000, capacity=40, sold=False)
    response = apply(sales, application_form(unsold))
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "plan_id") == "Choose a plan that is on sale."
    assert "40 GB" not in response.get_data(as_text=True)  # not offered either
    assert _applications(app) == []


@pytest.mark.parametrize(
    "address",
    [
        "admin@beta.example",  # another organisation's user
        "ADMIN@Alpha.Example",  # a client's user, in other letters
        "agent@othersales.example",  # another partner's agent
        "support@provider.example",  # the provider's staff
    ],
)
def test_the_address_of_an_existing_user_is_refused_without_saying_whose(
    app, world, sales, address
):
    """Issue 13: the form does not tell whose an address is: one neutral answer, as users'
    invitations give."""
    response = apply(sales, application_form(world.ids["plan_small"], admin_email=address))
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "admin_email") == NEUTRAL
    assert _applications(app) == []


def test_an_address_in_another_pending_application_is_refused_the_same(app, world, sales):
    other = signed_in_client(app, world.emails["other_agency_agent"])
    applied(app, other, application_form(world.ids["plan_small"]))
    response = apply(
        sales, application_form(world.ids["plan_large"], admin_email="Admin@Gamma.example")
    )
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "admin_email") == NEUTRAL
    assert len(_applications(app)) == 1


def test_the_same_application_sent_twice_at_once_is_stored_once(app, world):
    """Two tabs (or two agents) send the same application at once: the partial unique index on
    the pending administrator's address takes one; the other is told next to the field."""
    clients = [
        signed_in_client(app, world.emails[kind])
        for kind in ("sales_agent", "sales_agent", "partner_admin", "agency_agent")
    ]
    start = threading.Barrier(len(clients))
    form = application_form(world.ids["plan_small"])

    def submit(client):
        start.wait()
        response = apply(client, form)
        return response.status_code, _error(response.get_data(as_text=True), "admin_email")

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = sorted(pool.map(submit, clients), key=str)
    assert [status for status, _ in answers] == [302] + [422] * (len(clients) - 1)
    assert {error for _, error in answers[1:]} == {NEUTRAL}
    assert len(_applications(app)) == 1
    assert len(rows(app, AuditEvent, action="partner_application_submitted")) == 1
    assert len(_outbox(app, "partner_application_submitted")) == 1


# --- approving -----------------------------------------------------------------------------------


def test_r71_r60_approval_onboards_the_client_for_the_partner_without_consent(
    app, world, sales, staff
):
    """On approval the company is onboarded (organisation, first contract on the plan from the
    service start, first administrator invited by e-mail) and assigned to the partner, whose
    agent now finds it among its clients; nobody consented to the terms for it (R-60, R-71)."""
    _terms_in_force(app, world)
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))

    page = staff.get(f"/staff/applications/{application_id}").get_data(as_text=True)
    assert f'action="/staff/applications/{application_id}/approve"' in page
    assert _cell(page, "fee-initial-total") == "¥55,000"
    asked = _approve(staff, application_id, confirmed=None)
    assert asked.status_code == 200
    summary = _summary(asked.get_data(as_text=True))
    assert "Create the organisation Gamma K.K. (ガンマ)." in summary
    assert "It becomes a client of Sales Agent Co. (Sales agent)" in summary
    assert "Nobody consents to the terms for the organisation" in summary
    back = _approve(staff, application_id, confirmed="edit")
    assert back.headers["Location"] == f"/staff/applications/{application_id}"
    assert _organisation(app, "Gamma K.K.") is None  # nothing yet

    done = _approve(staff, application_id)
    assert done.status_code == 302
    assert done.headers["Location"] == f"/staff/applications/{application_id}"
    flashes = unescape(staff.get(done.headers["Location"]).get_data(as_text=True))
    assert "Gamma K.K. is onboarded as a client of Sales Agent Co." in flashes

    organisation = _organisation(app, "Gamma K.K.")
    assert organisation is not None
    assert organisation.legal_name_kana == "ガンマ"
    assert organisation.contract_contact_email == "contracts@gamma.example"
    assert organisation.sales_channel == SalesChannel.SALES_AGENT
    (application,) = _applications(app)
    assert application.status == ApplicationStatus.APPROVED
    assert application.organisation_id == organisation.id
    assert application.decided_by_id == world.ids["support"]
    with app.app_context():
        assigned = db.session.scalars(
            sa.select(PartnerAssignment.partner_id).where(
                PartnerAssignment.organisation_id == organisation.id
            )
        ).all()
    assert assigned == [world.ids["sales_partner"]]
    (contract,) = rows(app, Contract, organisation_id=organisation.id)
    assert contract.plan_id == world.ids["plan_small"]
    assert contract.service_start == date(2027, 4, 1)
    assert contract.partner_id == world.ids["sales_partner"]
    (administrator,) = rows(app, User, organisation_id=organisation.id)
    assert administrator.email == "admin@gamma.example"
    (invitation,) = _outbox(app, "invitation")
    assert invitation.to_address == "admin@gamma.example"
    # no consent on the application: the administrator consents himself.
    assert rows(app, TermsConsent, organisation_id=organisation.id) == []
    assert len(rows(app, AuditEvent, action="partner_application_approved")) == 1

    # The agent who applied is told, with the fees (a sales agent, R-71), and finds the client.
    (told,) = _outbox(app, "partner_application_approved")
    assert told.to_address == world.emails["sales_agent"]
    assert "¥55,000" in told.body
    clients = sales.get("/partner/clients").get_data(as_text=True)
    assert f"/partner/clients/{organisation.id}/enter" in clients
    page = sales.get(f"/partner/applications/{application_id}").get_data(as_text=True)
    assert _cell(page, "status") == "Approved"
    assert _cell(page, "client") == "Gamma K.K."
    assert "was invited by e-mail" in page
    assert "Withdraw the application" not in page
    # Decided: it is not decided again.
    again = _approve(staff, application_id)
    assert again.status_code == 302
    assert "This application was already decided." in staff.get(again.headers["Location"]).get_data(
        as_text=True
    )
    assert len(rows(app, Organisation)) == 3


# deemed consent by use applies only to a version that took effect after the organisation
# joined (services.terms.record_deemed_consent); the one in force when a partner's client is
# onboarded is never deemed consented: its administrator is asked, and consents explicitly.
@pytest.mark.parametrize(
    "effective_on",
    [
        pytest.param(date(2027, 4, 1), id="taking-effect-later"),
        pytest.param(date(2027, 1, 1), id="in-force"),
    ],
)
def test_r60_the_invited_administrator_is_asked_to_consent_and_consents(
    app, world, sales, staff, effective_on
):
    """R-60: after choosing his password, the client's first administrator is asked to consent
    to the terms (nobody consented on the application) and consents explicitly."""
    version_id = _terms_in_force(app, world, effective_on)
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    assert _approve(staff, application_id).status_code == 302
    (invitation,) = _outbox(app, "invitation")
    token = re.search(r"/invitation/(\S+)", invitation.body).group(1)

    browser = app.test_client()
    accepted = browser.post(
        f"/invitation/{token}", data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert accepted.status_code == 302
    login(browser, "admin@gamma.example", NEW_PASSWORD)
    page = browser.get("/contracts").get_data(as_text=True)
    assert 'data-testid="terms-banner"' in page
    assert f'href="/terms/{version_id}"' in page
    assert "Read and consent" in page

    consented = browser.post(f"/terms/{version_id}/consent", data={"agree": "y"})
    assert consented.status_code == 302
    organisation = _organisation(app, "Gamma K.K.")
    (consent,) = rows(app, TermsConsent, organisation_id=organisation.id)
    assert consent.kind == ConsentKind.EXPLICIT
    assert consent.terms_version_id == version_id
    with app.app_context():
        administrator = db.session.scalar(
            sa.select(User).where(User.email == "admin@gamma.example")
        )
        assert consent.user_id == administrator.id
    assert 'data-testid="terms-banner"' not in browser.get("/contracts").get_data(as_text=True)


def test_two_approvals_at_once_onboard_once(app, world, sales):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    clients = [signed_in_client(app, world.emails["support"]) for _ in range(3)]
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return _approve(client, application_id).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(submit, clients))
    assert statuses == [302] * len(clients)  # the others are told it was already decided
    assert len(rows(app, Organisation)) == 3  # A, B and one Gamma
    assert len(rows(app, User, email="admin@gamma.example")) == 1
    assert len(_outbox(app, "invitation")) == 1
    assert len(_outbox(app, "partner_application_approved")) == 1
    assert len(rows(app, AuditEvent, action="partner_application_approved")) == 1
    (application,) = _applications(app)
    assert application.status == ApplicationStatus.APPROVED


def test_r80_an_inet_application_needs_its_contacts_and_registers_on_approval(
    app, world, sales, staff
):
    """I-NET SERVICE (IN 16): the registration's contacts are required with an I-NET plan, and
    on approval the client is registered with them: applied through an agent, and without any
    consent (R-60, R-71). I-NET is free: no fee is shown (R-80)."""
    plan_id = _inet_plan(app)
    missing = apply(sales, application_form(plan_id))
    assert missing.status_code == 422
    page = missing.get_data(as_text=True)
    assert _error(page, "inet_application_contact_name") == "This field is required."
    assert _error(page, "inet_operations_manager_email") == "Enter a valid e-mail address."
    assert _applications(app) == []

    form = application_form(
        plan_id,
        inet_application_contact_name="Gamma Applicant",
        inet_application_contact_email="Apply@Gamma.example",
        inet_operations_manager_name="Gamma Operations",
        inet_operations_manager_email="ops@gamma.example",
    )
    asked = apply(sales, form, confirmed=None).get_data(as_text=True)
    assert 'data-testid="application-inet"' in asked
    assert 'data-testid="application-fees"' not in asked and "¥" not in _text(asked)
    application_id = applied(app, sales, form)
    assert "I-NET SERVICE with the contacts" in _summary(
        _approve(staff, application_id, confirmed=None).get_data(as_text=True)
    )
    assert _approve(staff, application_id).status_code == 302

    organisation = _organisation(app, "Gamma K.K.")
    (registration,) = rows(app, InetRegistration, organisation_id=organisation.id)
    assert registration.channel == RegistrationChannel.AGENT
    assert registration.registered_by_id == world.ids["sales_agent"]
    assert registration.terms_version_id is None
    assert (registration.application_contact_name, registration.application_contact_email) == (
        "Gamma Applicant",
        "apply@gamma.example",
    )
    assert (registration.operations_manager_name, registration.operations_manager_email) == (
        "Gamma Operations",
        "ops@gamma.example",
    )
    assert rows(app, TermsConsent, organisation_id=organisation.id) == []
    assert len(_outbox(app, "inet_registration_registered")) >= 1


def test_the_inet_contacts_are_ignored_for_another_service(app, world, sales):
    form = application_form(
        world.ids["plan_small"],
        inet_application_contact_name="Someone",
        inet_application_contact_email="not an address",
    )
    applied(app, sales, form)
    (application,) = _applications(app)
    assert application.inet_application_contact_name == ""
    assert application.inet_application_contact_email == ""


@pytest.mark.parametrize("meanwhile", ["address taken", "plan withdrawn from sale"])
def test_an_application_that_no_longer_holds_is_not_approved(app, world, sales, staff, meanwhile):
    """What changed since the agent applied is checked again: staff see why on the page (409),
    nothing is onboarded, and they may refuse it with that reason."""
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    with app.app_context():
        if meanwhile == "address taken":
            organisation = db.session.get(Organisation, world.org_b)
            db.session.add(
                User(
                    email="admin@gamma.example",
                    name="Taken",
                    password_hash="",
                    kind="customer",
                    organisation=organisation,
                    customer_role="member",
                )
            )
            message = "A user with this e-mail address already exists."
        else:
            db.session.get(Plan, world.ids["plan_small"]).sold = False
            message = "Choose a plan that is on sale."
        db.session.commit()
    for confirmed in (None, "yes"):
        response = _approve(staff, application_id, confirmed=confirmed)
        assert response.status_code == 409
        assert message in _cell(response.get_data(as_text=True), "approval-error")
    assert _organisation(app, "Gamma K.K.") is None
    assert _applications(app)[0].status == ApplicationStatus.PENDING
    assert _outbox(app, "partner_application_approved") == []


# --- refusing and withdrawing -------------------------------------------------------------------


def test_refusing_needs_a_reason_and_tells_the_agent(app, world, sales, staff):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    for reason, message in (("", "Give the reason."), ("too short", "Give the reason in 10")):
        response = _refuse(staff, application_id, reason)
        assert response.status_code == 422
        assert message in (_error(response.get_data(as_text=True), "reason") or "")
    assert _applications(app)[0].status == ApplicationStatus.PENDING

    reason = "The company's registered address could not be confirmed."
    asked = _refuse(staff, application_id, reason, confirmed=None)
    assert asked.status_code == 200
    assert f"Reason: {reason}" in _summary(asked.get_data(as_text=True))
    back = _refuse(staff, application_id, reason, confirmed="edit")
    assert back.status_code == 200
    assert reason in unescape(back.get_data(as_text=True))  # as typed
    assert _applications(app)[0].status == ApplicationStatus.PENDING

    assert _refuse(staff, application_id, reason).status_code == 302
    (application,) = _applications(app)
    assert application.status == ApplicationStatus.REFUSED
    assert application.refusal_reason == reason
    assert application.organisation_id is None
    assert _organisation(app, "Gamma K.K.") is None
    (told,) = _outbox(app, "partner_application_refused")
    assert told.to_address == world.emails["sales_agent"]
    assert reason in told.body
    page = sales.get(f"/partner/applications/{application_id}").get_data(as_text=True)
    assert _cell(page, "status") == "Refused"
    assert _cell(page, "refusal-reason") == reason
    assert len(rows(app, AuditEvent, action="partner_application_refused")) == 1
    # Decided: neither approved nor refused again; and the address is free for a new one.
    assert _approve(staff, application_id).status_code == 302
    assert _organisation(app, "Gamma K.K.") is None
    applied(app, sales, application_form(world.ids["plan_small"]))


def test_the_agent_withdraws_a_pending_application_after_a_confirmation(app, world, sales, staff):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    url = f"/partner/applications/{application_id}/withdraw"
    page = sales.get(f"/partner/applications/{application_id}").get_data(as_text=True)
    assert f'action="{url}"' in page

    asked = sales.post(url, data={})
    assert asked.status_code == 200
    assert "Withdraw the application for Gamma K.K." in _summary(asked.get_data(as_text=True))
    back = sales.post(url, data={"confirmed": "edit"})
    assert back.headers["Location"] == f"/partner/applications/{application_id}"
    assert _applications(app)[0].status == ApplicationStatus.PENDING

    done = sales.post(url, data={"confirmed": "yes"})
    assert done.status_code == 302
    (application,) = _applications(app)
    assert application.status == ApplicationStatus.WITHDRAWN
    assert application.decided_by_id == world.ids["sales_agent"]
    assert len(rows(app, AuditEvent, action="partner_application_withdrawn")) == 1
    # Staff can no longer approve it; the agent cannot withdraw it twice.
    assert _approve(staff, application_id).status_code == 302
    assert _organisation(app, "Gamma K.K.") is None
    again = sales.post(url, data={"confirmed": "yes"})
    assert "This application was already decided." in sales.get(again.headers["Location"]).get_data(
        as_text=True
    )


# --- lists and who may ----------------------------------------------------------------------------


def test_staff_list_pending_first_the_longest_waiting_first(app, world, sales, agency, staff):
    first = applied(app, sales, application_form(world.ids["plan_small"]))
    second = applied(
        app, agency, application_form(world.ids["plan_large"], admin_email="b@g.example")
    )
    third = applied(
        app, sales, application_form(world.ids["plan_small"], admin_email="c@g.example")
    )
    assert _refuse(staff, third, "Not a company we can serve.").status_code == 302
    page = staff.get("/staff/applications").get_data(as_text=True)
    pending = page.split('data-testid="pending-applications"')[1].split("</table>")[0]
    decided = page.split('data-testid="decided-applications"')[1].split("</table>")[0]
    assert re.findall(r'data-testid="application-(\d+)"', pending) == [str(first), str(second)]
    assert re.findall(r'data-testid="application-(\d+)"', decided) == [str(third)]
    assert 'Agency Co. <span class="muted">(Agency)</span>' in pending
    # An agent sees only its own company's applications, newest first.
    listing = sales.get("/partner/applications").get_data(as_text=True)
    assert re.findall(r'data-testid="application-(\d+)"', listing) == [str(third), str(first)]


def test_r71_another_partners_application_answers_404_to_agents(app, world, sales):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    for kind in ("agency_agent", "other_sales_agent", "other_agency_agent"):
        client = signed_in_client(app, world.emails[kind])
        assert client.get(f"/partner/applications/{application_id}").status_code == 404, kind
        withdraw = client.post(
            f"/partner/applications/{application_id}/withdraw", data={"confirmed": "yes"}
        )
        assert withdraw.status_code == 404, kind
        listing = client.get("/partner/applications").get_data(as_text=True)
        assert f'data-testid="application-{application_id}"' not in listing
    assert _applications(app)[0].status == ApplicationStatus.PENDING


@pytest.mark.parametrize("kind", ["admin", "member", "support", "billing"])
def test_customers_and_staff_have_no_agent_pages(app, world, kind):
    client = app.test_client()
    become(app, client, world, kind)
    assert client.get("/partner/applications").status_code == 404
    assert client.get("/partner/applications/new").status_code == 404
    form = application_form(world.ids["plan_small"])
    assert apply(client, form).status_code == 404
    assert _applications(app) == []


@pytest.mark.parametrize("kind", ["billing", "production"])
def test_other_staff_may_look_but_not_decide(app, world, sales, kind):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    client = signed_in_client(app, world.emails[kind])
    assert client.get("/staff/applications").status_code == 200
    page = client.get(f"/staff/applications/{application_id}")
    assert page.status_code == 200
    assert "/approve" not in page.get_data(as_text=True)
    assert _approve(client, application_id).status_code == 403
    assert _refuse(client, application_id, "Not a company we can serve.").status_code == 403
    assert _applications(app)[0].status == ApplicationStatus.PENDING
    assert _organisation(app, "Gamma K.K.") is None


def test_r72_staff_viewing_as_a_customer_get_403(app, world, sales):
    application_id = applied(app, sales, application_form(world.ids["plan_small"]))
    client = app.test_client()
    become(app, client, world, "support_viewing")
    assert client.get("/staff/applications").status_code == 403
    assert client.get(f"/staff/applications/{application_id}").status_code == 403
    assert _approve(client, application_id).status_code == 403
    assert client.get("/partner/applications").status_code == 404
    assert _applications(app)[0].status == ApplicationStatus.PENDING


def test_the_navigation_links_to_the_applications(app, world, sales, staff):
    assert 'href="/partner/applications"' in sales.get("/partner/clients").get_data(as_text=True)
    for kind in ("support", "billing", "production"):
        page = signed_in_client(app, world.emails[kind]).get("/staff/partners")
        assert 'href="/staff/applications"' in page.get_data(as_text=True), kind


def test_every_page_has_unique_ids(app, world, sales, staff):
    form = application_form(world.ids["plan_small"])
    pages = {
        "form": sales.get("/partner/applications/new"),
        "confirm": apply(sales, form, confirmed=None),
    }
    application_id = applied(app, sales, form)
    pages |= {
        "agent list": sales.get("/partner/applications"),
        "agent page": sales.get(f"/partner/applications/{application_id}"),
        "staff list": staff.get("/staff/applications"),
        "staff page": staff.get(f"/staff/applications/{application_id}"),
        "refused reason": _refuse(staff, application_id, "short"),
    }
    for name, response in pages.items():
        ids = re.findall(r'\sid="([^"]+)"', response.get_data(as_text=True))
        assert len(ids) == len(set(ids)), name
