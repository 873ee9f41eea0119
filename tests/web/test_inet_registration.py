"""I-NET SERVICE registration (R-80, R-84, with R-60 consents, R-61 notices, R-71 agents and
R-72 staff viewing as the customer): applying in the portal, the public application with its
e-mailed link, staff onboarding, contacts, ending, and dormant registrations."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from portal.clock import TOKYO, clock
from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    AuditEvent,
    ConsentKind,
    InetApplication,
    InetRegistration,
    Organisation,
    OutboxEmail,
    RegistrationChannel,
    RegistrationEnd,
    Service,
    TermsConsent,
    TermsVersion,
    User,
)
from portal.services import inet_registrations
from portal.services.auth import authenticate
from tests.factories import (
    add_card_order,
    add_inet_registration,
    become,
    build_world,
    row_counts,
    rows,
    signed_in_client,
)

CONTACTS = {
    "application_contact_name": "佐藤 花子",
    "application_contact_email": "hanako@alpha.example",
    "operations_manager_name": "鈴木 太郎",
    "operations_manager_email": "taro@alpha.example",
}
# Refused contacts (each on its own: a NUL byte, an over-long name, bad e-mails, a missing
# name). Nothing is stored, so one world serves them all.
REFUSED_CONTACTS = [
    {"application_contact_name": "Sato\x00Hanako"},
    {"operations_manager_name": "長" * 101},
    {"application_contact_email": "not an e-mail"},
    {"operations_manager_email": "a@b.example\x00"},
    {"operations_manager_email": "x" * 250 + "@b.example"},
    {"application_contact_name": ""},
]


def add_inet_terms(app, *, effective_on: date = date(2026, 4, 1)) -> int:
    """Version 1 of the I-NET SERVICE terms, in force at the tests' clock (2027-03-01)."""
    with app.app_context():
        service = db.session.scalar(sa.select(Service).where(Service.code == "inet"))
        version = TermsVersion(
            service=service,
            version=1,
            title_ja="I-NET SERVICE 利用規約",
            title_en="I-NET SERVICE Terms of Service",
            body_ja="第1条 本規約は I-NET SERVICE に適用されます。",
            body_en="Art. 1 These terms apply to I-NET SERVICE.",
            effective_on=effective_on,
        )
        db.session.add(version)
        db.session.commit()
        return version.id


@pytest.fixture
def world(app):
    world = build_world(app)
    world.ids["inet_terms"] = add_inet_terms(app)
    return world


def client_as(app, world, kind: str):
    client = app.test_client()
    become(app, client, world, kind)
    return client


def registration_of(app, organisation_id: int) -> InetRegistration | None:
    found = rows(app, InetRegistration, organisation_id=organisation_id)
    return next((r for r in found if r.ended_at is None), None)


def register(app, organisation_id: int, **values) -> int:
    with app.app_context():
        registration = add_inet_registration(
            db.session.get(Organisation, organisation_id), **values
        )
        db.session.commit()
        return registration.id


def refusal_of(app, organisation_id: int) -> str | None:
    """The refusal as an English reader reads it."""
    with app.test_request_context(), force_locale("en"):
        return inet_registrations.ordering_refusal(organisation_id, clock.today())


def page_text(response) -> str:
    return unescape(response.get_data(as_text=True))


# --- applying in the portal ---------------------------------------------------------------


def test_an_administrator_applies_and_consents_for_the_organisation(app, world):
    """R-80/R-60: the application names the two contacts and consents to the terms in force,
    read on the page; the consent is the organisation's, on the application form."""
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get("/id-cards/")
    assert page.status_code == 200
    assert "Art. 1 These terms apply to I-NET SERVICE." in page_text(page)
    assert "¥" not in page_text(page)  # free, no amount anywhere
    response = admin.post(
        "/id-cards/apply",
        data={**CONTACTS, "consent": "y", "terms_version_id": world.ids["inet_terms"]},
    )
    assert response.status_code == 302
    registration = registration_of(app, world.org_a)
    assert registration.channel == RegistrationChannel.CUSTOMER
    assert registration.terms_version_id == world.ids["inet_terms"]
    assert registration.application_contact_email == "hanako@alpha.example"
    (consent,) = rows(app, TermsConsent, organisation_id=world.org_a)
    assert consent.kind == ConsentKind.APPLICATION
    assert consent.user_id == world.ids["admin"]
    assert consent.terms_version_id == world.ids["inet_terms"]
    notices = rows(app, OutboxEmail, kind="inet_registration_registered")
    assert {n.to_address for n in notices} >= {"hanako@alpha.example", "admin@alpha.example"}
    assert all(n.is_notice and n.organisation_id == world.org_a for n in notices)
    assert [e.action for e in rows(app, AuditEvent, action="inet_registered")] == [
        "inet_registered"
    ]
    assert refusal_of(app, world.org_a) is None
    text = page_text(admin.get("/id-cards/"))
    assert "Version 1 consented to on" in text
    assert "hanako@alpha.example" in text


def test_an_administrator_must_consent_to_apply(app, world):
    """R-80: no consent, no registration (422, nothing stored)."""
    admin = signed_in_client(app, world.emails["admin"])
    before = row_counts(app)
    response = admin.post(
        "/id-cards/apply", data={**CONTACTS, "terms_version_id": world.ids["inet_terms"]}
    )
    assert response.status_code == 422
    assert "Consent to the I-NET SERVICE terms to apply." in page_text(response)
    assert row_counts(app) == before
    assert registration_of(app, world.org_a) is None


def test_bad_contacts_are_refused_next_to_the_field(app, world):
    """Bad input: a message next to the field, 422, nothing stored."""
    admin = signed_in_client(app, world.emails["admin"])
    before = row_counts(app)
    for change in REFUSED_CONTACTS:
        response = admin.post(
            "/id-cards/apply",
            data={
                **CONTACTS,
                **change,
                "consent": "y",
                "terms_version_id": world.ids["inet_terms"],
            },
        )
        assert response.status_code == 422, change
        assert 'class="error"' in response.get_data(as_text=True), change
    assert row_counts(app) == before


def test_the_terms_read_must_still_be_in_force(app, world):
    """R-60: consent is to the text the administrator read; a version that took effect
    meanwhile is shown instead (409), nothing registered."""
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post(
        "/id-cards/apply", data={**CONTACTS, "consent": "y", "terms_version_id": "999"}
    )
    assert response.status_code == 409
    assert registration_of(app, world.org_a) is None


@pytest.mark.parametrize("agent", ["sales_agent", "agency_agent"])
def test_an_agent_applies_for_its_client_without_consenting(app, world, agent):
    """R-71: agents of both kinds apply for their client but never consent; ordering waits
    for an administrator's consent, asked for on the page, by e-mail and by the terms banner
    (the I-NET terms now concern the organisation, R-60)."""
    client = client_as(app, world, agent)
    response = client.post(
        "/id-cards/apply",
        data={**CONTACTS, "consent": "y", "terms_version_id": world.ids["inet_terms"]},
    )
    assert response.status_code == 302
    registration = registration_of(app, world.org_a)
    assert registration.channel == RegistrationChannel.AGENT
    assert registration.terms_version_id is None
    assert rows(app, TermsConsent, organisation_id=world.org_a) == []
    refusal = refusal_of(app, world.org_a)
    assert refusal and "administrator" in refusal
    page = client.get("/id-cards/")
    text = page_text(page)
    assert 'data-testid="inet-consent-prompt"' in text
    assert 'data-testid="terms-banner"' in text
    assert client.get(f"/terms/{world.ids['inet_terms']}").status_code == 200
    assert "I-NET SERVICE" in page_text(client.get("/terms"))
    (notice,) = [
        n
        for n in rows(app, OutboxEmail, kind="inet_registration_registered")
        if n.to_address == "admin@alpha.example"
    ]
    assert f"/terms/{world.ids['inet_terms']}" in notice.body


def test_the_clients_administrator_then_consents_and_the_organisation_may_order(app, world):
    """R-60: after an agent's application, the administrator's consent (the existing terms
    page; their use of the portal also counts, as deemed consent) lifts the refusal."""
    register(app, world.org_a, channel=RegistrationChannel.AGENT)
    assert refusal_of(app, world.org_a)
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post(f"/terms/{world.ids['inet_terms']}/consent", data={"agree": "y"})
    assert response.status_code == 302
    (consent,) = rows(app, TermsConsent, organisation_id=world.org_a)
    assert consent.terms_version_id == world.ids["inet_terms"]
    assert refusal_of(app, world.org_a) is None


def test_an_unregistered_organisation_cannot_order(app, world):
    refusal = refusal_of(app, world.org_a)
    assert refusal == "Your organisation is not registered for I-NET SERVICE."


def test_the_i_net_terms_concern_only_registered_organisations(app, world):
    """R-60: before registering, the I-NET terms are not the organisation's (404 on its
    terms pages, no banner); an ended registration takes them away again."""
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.get(f"/terms/{world.ids['inet_terms']}").status_code == 404
    registration_id = register(app, world.org_a)
    assert admin.get(f"/terms/{world.ids['inet_terms']}").status_code == 200
    with app.app_context():
        db.session.get(InetRegistration, registration_id).ended_at = clock.now()
        db.session.commit()
    assert admin.get(f"/terms/{world.ids['inet_terms']}").status_code == 404


def test_staff_viewing_as_the_customer_see_but_neither_apply_nor_end(app, world):
    """R-72: staff viewing as the customer read the page; they cannot apply or end."""
    viewing = client_as(app, world, "support_viewing")
    page = viewing.get("/id-cards/")
    assert page.status_code == 200
    assert "Staff viewing as the customer cannot apply for it." in page_text(page)
    data = {**CONTACTS, "terms_version_id": world.ids["inet_terms"]}
    assert viewing.post("/id-cards/apply", data=data).status_code == 403
    register(app, world.org_a)
    page = page_text(viewing.get("/id-cards/"))
    assert 'action="/id-cards/end"' not in page
    assert 'action="/id-cards/contacts"' not in page
    assert viewing.post("/id-cards/end", data={"confirmed": "yes"}).status_code == 403
    assert registration_of(app, world.org_a) is not None


def test_members_do_not_see_id_cards(app, world):
    """R-85: ID cards are the administrators' (members get 403)."""
    member = signed_in_client(app, world.emails["member"])
    assert member.get("/id-cards/").status_code == 403
    assert member.post("/id-cards/apply", data=CONTACTS).status_code == 403


def test_the_navigation_offers_the_application_to_an_unregistered_organisation(app, world):
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get("/contracts").get_data(as_text=True)
    assert 'href="/id-cards/"' in page


# --- contacts --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["admin", "sales_agent", "agency_agent"])
def test_administrators_and_agents_change_the_contacts(app, world, kind):
    """IN 16: the contacts change; the change is audited."""
    register(app, world.org_a)
    client = client_as(app, world, kind)
    new = {**CONTACTS, "operations_manager_name": "高橋 一郎"}
    assert client.post("/id-cards/contacts", data=new).status_code == 302
    assert registration_of(app, world.org_a).operations_manager_name == "高橋 一郎"
    assert rows(app, AuditEvent, action="inet_contacts_changed")


def test_bad_contacts_change_nothing(app, world):
    register(app, world.org_a)
    admin = signed_in_client(app, world.emails["admin"])
    admin.get("/id-cards/")  # the first use (deemed consent, R-60) before counting
    before = row_counts(app), registration_of(app, world.org_a)
    for change in REFUSED_CONTACTS:
        response = admin.post("/id-cards/contacts", data={**CONTACTS, **change})
        assert response.status_code == 422, change
    after = registration_of(app, world.org_a)
    assert row_counts(app) == before[0]
    assert after.application_contact_name == before[1].application_contact_name
    assert after.operations_manager_email == before[1].operations_manager_email


# --- ending (R-83) ---------------------------------------------------------------------------


def test_an_administrator_ends_the_registration_and_sees_when_photos_go(app, world):
    """R-83: the use ends today (2027-03-01); the photos are deleted one month later
    (2027-04-01): said before confirming, in the notice and on the page."""
    register(app, world.org_a)
    admin = signed_in_client(app, world.emails["admin"])
    confirm = admin.post("/id-cards/end", data={})
    assert confirm.status_code == 200
    text = page_text(confirm)
    assert "March 1, 2027" in text and "April 1, 2027" in text
    assert registration_of(app, world.org_a) is not None  # nothing ended yet
    response = admin.post("/id-cards/end", data={"confirmed": "yes"})
    assert response.status_code == 302
    (ended,) = rows(app, InetRegistration, organisation_id=world.org_a)
    assert ended.ended_on == date(2027, 3, 1)
    assert ended.photos_delete_on == date(2027, 4, 1)
    assert ended.end_reason == RegistrationEnd.WITHDRAWN
    assert ended.ended_by_id == world.ids["admin"]
    notices = rows(app, OutboxEmail, kind="inet_registration_ended")
    assert notices and all(
        "2027年4月1日" in n.body for n in notices
    )  # in the organisation's language
    assert rows(app, AuditEvent, action="inet_registration_ended")
    page = page_text(admin.get("/id-cards/"))
    assert 'data-testid="photos-delete-on"' in page
    assert "Will be deleted on April 1, 2027" in page
    assert "Register again for I-NET SERVICE" in page
    # A second confirmation finds nothing to end.
    assert admin.post("/id-cards/end", data={"confirmed": "yes"}).status_code == 409


@pytest.mark.parametrize("kind", ["sales_agent", "agency_agent"])
def test_agents_do_not_end_their_clients_registration(app, world, kind):
    register(app, world.org_a)
    client = client_as(app, world, kind)
    assert client.post("/id-cards/end", data={"confirmed": "yes"}).status_code == 403
    assert registration_of(app, world.org_a) is not None


def test_a_registration_with_an_order_in_progress_cannot_end(app, world):
    """Cards in production need their photos: ending waits for the orders (409)."""
    registration_id = register(app, world.org_a)
    with app.app_context():
        add_card_order(
            db.session.get(InetRegistration, registration_id),
            db.session.get(User, world.ids["admin"]),
            [],
            state=OrderState.ACCEPTED,
        )
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post("/id-cards/end", data={"confirmed": "yes"})
    assert response.status_code == 409
    assert registration_of(app, world.org_a) is not None


def test_an_ended_organisation_registers_again(app, world):
    """R-84: the customer can register again; the old registration stays on the record."""
    old = register(app, world.org_a)
    with app.app_context():
        found = db.session.get(InetRegistration, old)
        found.ended_at, found.ended_on = clock.now(), clock.today()
        found.photos_delete_on = date(2027, 4, 1)
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post(
        "/id-cards/apply",
        data={**CONTACTS, "consent": "y", "terms_version_id": world.ids["inet_terms"]},
    )
    assert response.status_code == 302
    assert len(rows(app, InetRegistration, organisation_id=world.org_a)) == 2
    assert registration_of(app, world.org_a).id != old


def test_an_organisation_is_registered_once(app, world):
    """At most one open registration: a second application answers 409."""
    register(app, world.org_a)
    client = client_as(app, world, "sales_agent")
    response = client.post("/id-cards/apply", data=CONTACTS)
    assert response.status_code == 409
    assert len(rows(app, InetRegistration, organisation_id=world.org_a)) == 1


# --- staff onboarding (R-80) -----------------------------------------------------------------


def test_support_staff_register_an_organisation_after_a_confirmation(app, world):
    """R-80: staff onboarding names the contacts; staff never consent: the organisation's
    administrators are asked to."""
    support = signed_in_client(app, world.emails["support"])
    org_page = page_text(support.get(f"/staff/organisations/{world.org_b}"))
    assert f'href="/staff/i-net/organisations/{world.org_b}"' in org_page
    url = f"/staff/i-net/organisations/{world.org_b}/register"
    confirm = support.post(url, data=CONTACTS)
    assert confirm.status_code == 200
    assert 'data-testid="confirm-summary"' in confirm.get_data(as_text=True)
    assert registration_of(app, world.org_b) is None
    assert support.post(url, data={**CONTACTS, "confirmed": "yes"}).status_code == 302
    registration = registration_of(app, world.org_b)
    assert registration.channel == RegistrationChannel.STAFF
    assert registration.registered_by_id == world.ids["support"]
    assert rows(app, TermsConsent, organisation_id=world.org_b) == []
    (notice,) = [
        n
        for n in rows(app, OutboxEmail, kind="inet_registration_registered")
        if n.to_address == "admin@beta.example"
    ]
    assert "同意" in notice.body  # the organisation reads Japanese: it is asked to consent
    # Registered: a second registration is refused.
    assert support.post(url, data={**CONTACTS, "confirmed": "yes"}).status_code == 409


def test_billing_staff_look_but_do_not_register(app, world):
    billing = signed_in_client(app, world.emails["billing"])
    assert billing.get(f"/staff/i-net/organisations/{world.org_b}").status_code == 200
    url = f"/staff/i-net/organisations/{world.org_b}/register"
    assert billing.post(url, data={**CONTACTS, "confirmed": "yes"}).status_code == 403
    assert registration_of(app, world.org_b) is None


def test_staff_onboarding_refuses_bad_contacts(app, world):
    support = signed_in_client(app, world.emails["support"])
    before = row_counts(app)
    url = f"/staff/i-net/organisations/{world.org_b}/register"
    for change in REFUSED_CONTACTS:
        response = support.post(url, data={**CONTACTS, **change, "confirmed": "yes"})
        assert response.status_code == 422, change
    assert row_counts(app) == before


# --- dormant registrations (R-84) ------------------------------------------------------------


def _at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), TOKYO).replace(hour=12)


def test_the_dormant_list_and_cancelling_a_dormant_registration(app, world):
    """R-84: B registered on 2024-02-01 and nobody of B signed in or ordered since: dormant
    since 2027-02-01. Staff see it, cancel it after a confirmation; B is told it may
    register again, and its photos go one month later."""
    register(app, world.org_b, registered_at=_at(date(2024, 2, 1)))
    register(app, world.org_a)  # registered today: not dormant
    support = signed_in_client(app, world.emails["support"])
    listed = page_text(support.get("/staff/i-net/registrations?state=dormant"))
    assert "Beta K.K." in listed and "Alpha K.K." not in listed
    assert "Dormant since February 1, 2027" in listed
    assert "Alpha K.K." in page_text(support.get("/staff/i-net/registrations"))
    url = f"/staff/i-net/organisations/{world.org_b}/cancel"
    confirm = support.post(url, data={})
    assert confirm.status_code == 200
    assert "February 1, 2024" in page_text(confirm)
    assert registration_of(app, world.org_b) is not None
    assert support.post(url, data={"confirmed": "yes"}).status_code == 302
    (cancelled,) = rows(app, InetRegistration, organisation_id=world.org_b)
    assert cancelled.end_reason == RegistrationEnd.DORMANT
    assert cancelled.ended_on == date(2027, 3, 1)
    assert cancelled.photos_delete_on == date(2027, 4, 1)
    notices = rows(app, OutboxEmail, kind="inet_registration_cancelled")
    assert notices and all(n.is_notice and n.organisation_id == world.org_b for n in notices)
    assert all("再登録" in n.body for n in notices)  # in Japanese: "you can register again"
    assert rows(app, AuditEvent, action="inet_registration_cancelled_dormant")
    # Listed as ended now; and a second cancellation finds nothing to cancel.
    assert "Beta K.K." in page_text(support.get("/staff/i-net/registrations?state=ended"))
    assert support.post(url, data={"confirmed": "yes"}).status_code == 409


@pytest.mark.parametrize(
    ("last_used", "dormant"),
    [
        pytest.param(date(2024, 3, 1), True, id="exactly-three-years"),
        pytest.param(date(2024, 3, 2), False, id="one-day-short"),
    ],
)
@pytest.mark.parametrize("use", ["registered", "signed_in", "ordered"])
def test_a_registration_used_in_the_last_three_years_is_not_cancelled(
    app, world, last_used, dormant, use
):
    """R-84: unused means no sign-in and no order for three years, counted from the latest
    of the registration, a user's last sign-in and the last order (Tokyo dates)."""
    old = _at(date(2023, 1, 10))
    registration_id = register(
        app, world.org_b, registered_at=_at(last_used) if use == "registered" else old
    )
    with app.app_context():
        if use == "signed_in":
            db.session.get(User, world.ids["other_admin"]).last_login_at = _at(last_used)
        if use == "ordered":
            order = add_card_order(
                db.session.get(InetRegistration, registration_id),
                db.session.get(User, world.ids["other_admin"]),
                [],
                state=OrderState.DELIVERED,
            )
            order.created_at = order.submitted_at = _at(last_used)
        db.session.commit()
    support = signed_in_client(app, world.emails["support"])
    response = support.post(
        f"/staff/i-net/organisations/{world.org_b}/cancel", data={"confirmed": "yes"}
    )
    assert response.status_code == (302 if dormant else 409)
    assert (registration_of(app, world.org_b) is None) == dormant


def test_billing_staff_cannot_cancel_a_dormant_registration(app, world):
    register(app, world.org_b, registered_at=_at(date(2023, 1, 10)))
    billing = signed_in_client(app, world.emails["billing"])
    url = f"/staff/i-net/organisations/{world.org_b}/cancel"
    assert billing.post(url, data={"confirmed": "yes"}).status_code == 403
    assert registration_of(app, world.org_b) is not None


def test_the_staff_search_takes_any_input(app, world):
    register(app, world.org_a)
    support = signed_in_client(app, world.emails["support"])
    for q in ("alpha", "\x00", "%", "_", "a" * 300):
        for state in ("open", "dormant", "ended", "all", "nonsense"):
            response = support.get(
                "/staff/i-net/registrations", query_string={"q": q, "state": state}
            )
            assert response.status_code == 200
    assert "Alpha K.K." in page_text(
        support.get("/staff/i-net/registrations", query_string={"q": "ALPHA"})
    )


# --- the public application (R-80) -----------------------------------------------------------

PUBLIC = {
    "legal_name": "ガンマ株式会社",
    "legal_name_kana": "ガンマ",
    "postal_code": "100-0001",
    "address": "東京都千代田区千代田1-1",
    "phone": "03-5555-6666",
    "application_contact_name": "山田 花子",
    "application_contact_email": "hanako@gamma.example",
    "operations_manager_name": "田中 次郎",
    "operations_manager_email": "jiro@gamma.example",
    "admin_name": "山田 太郎",
    "admin_email": "Taro@Gamma.example",
    "locale": "ja",
    "consent": "y",
}
NEW_PASSWORD = "a long new passphrase"


def _apply(client, world, **changes):
    return client.post(
        "/i-net/apply", data={**PUBLIC, "terms_version_id": world.ids["inet_terms"], **changes}
    )


def _link(app, email: str) -> str:
    (mail,) = rows(app, OutboxEmail, kind="inet_application_verify", to_address=email)
    match = re.search(r"/i-net/apply/(\S+)", mail.body)
    assert match, mail.body
    return match.group(0)


def test_the_public_application_registers_after_the_e_mail_is_verified(app, world):
    """R-80: the application is kept with only the SHA-256 of its link; the link shows it,
    and choosing a password creates the organisation, its administrator (argon2), its
    registration (public) and its consent to the version read, then signs the administrator
    in."""
    client = app.test_client()
    form = client.get("/i-net/apply")
    assert form.status_code == 200
    assert "第1条 本規約は I-NET SERVICE に適用されます。" in page_text(form)  # Japanese first
    response = _apply(client, world)
    assert response.status_code == 302 and response.headers["Location"] == "/i-net/apply/sent"
    assert client.get("/i-net/apply/sent").status_code == 200
    (application,) = rows(app, InetApplication)
    link = _link(app, "taro@gamma.example")
    token = link.rsplit("/", 1)[1]
    assert token not in application.token_sha256 and len(application.token_sha256) == 64
    assert application.expires_at.replace(tzinfo=UTC) == clock.now() + timedelta(hours=24)
    assert rows(app, Organisation, legal_name="ガンマ株式会社") == []  # not before the link
    page = client.get(link)
    assert page.status_code == 200
    assert "ガンマ株式会社" in page_text(page)
    response = client.post(link, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/id-cards/"
    (organisation,) = rows(app, Organisation, legal_name="ガンマ株式会社")
    assert organisation.billing_email == "hanako@gamma.example"
    (registration,) = rows(app, InetRegistration, organisation_id=organisation.id)
    assert registration.channel == RegistrationChannel.PUBLIC
    assert registration.terms_version_id == world.ids["inet_terms"]
    (consent,) = rows(app, TermsConsent, organisation_id=organisation.id)
    assert consent.kind == ConsentKind.APPLICATION
    with app.app_context():
        assert authenticate("taro@gamma.example", NEW_PASSWORD) is not None
    assert refusal_of(app, organisation.id) is None
    assert rows(app, AuditEvent, action="inet_application_verified")
    home = client.get("/id-cards/")
    assert home.status_code == 200
    assert "jiro@gamma.example" in page_text(home)
    # The link worked once.
    again = app.test_client().post(
        link, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert again.status_code == 404
    assert 'data-testid="link-unusable"' in page_text(again)
    assert len(rows(app, Organisation)) == 3


def test_an_expired_or_unknown_link_registers_nothing(app, world):
    client = app.test_client()
    _apply(client, world)
    link = _link(app, "taro@gamma.example")
    clock.set(clock.now() + timedelta(hours=24, seconds=1))
    before = row_counts(app)
    expired = client.post(link, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert expired.status_code == 404
    assert 'data-testid="link-unusable"' in page_text(expired)
    assert client.get("/i-net/apply/no-such-link").status_code == 404
    assert row_counts(app) == before


def test_an_address_with_an_account_gets_the_same_answer_and_is_told_to_sign_in(app, world):
    """No account enumeration: the page answers the same; the e-mail says to sign in."""
    client = app.test_client()
    response = _apply(client, world, admin_email="admin@alpha.example")
    assert response.status_code == 302 and response.headers["Location"] == "/i-net/apply/sent"
    assert rows(app, InetApplication) == []
    (mail,) = rows(app, OutboxEmail, kind="inet_application_existing_account")
    assert mail.to_address == "admin@alpha.example"
    assert "/login" in mail.body


# Each refused on its own: NUL bytes, over-long fields, bad e-mails, no consent, a postal
# code, a reading in kanji, a missing phone, an unknown language. Nothing is stored.
REFUSED_APPLICATIONS = [
    {"legal_name": "Gamma\x00"},
    {"address": "a" * 301},
    {"admin_email": "taro at gamma"},
    {"application_contact_email": "x\x00@gamma.example"},
    {"consent": ""},
    {"postal_code": "12"},
    {"legal_name_kana": "漢字"},
    {"phone": ""},
    {"locale": "fr"},
]


def test_a_bad_public_application_is_refused_and_nothing_is_stored(app, world):
    client = app.test_client()
    before = row_counts(app)
    for change in REFUSED_APPLICATIONS:
        response = _apply(client, world, **change)
        assert response.status_code == 422, change
        assert 'class="error"' in response.get_data(as_text=True), change
    assert row_counts(app) == before


def test_a_weak_password_on_the_link_page_registers_nothing(app, world):
    client = app.test_client()
    _apply(client, world)
    link = _link(app, "taro@gamma.example")
    before = row_counts(app)
    response = client.post(link, data={"new_password": "short", "confirm": "short"})
    assert response.status_code == 422
    assert row_counts(app) == before
    assert client.get(link).status_code == 200  # still usable


def test_the_public_application_is_rate_limited_per_address(make_app):
    """Flask-Limiter, as at sign-in: a client address sends a few applications an hour."""
    app = make_app(RATELIMIT_ENABLED=True, INET_APPLICATION_RATE_LIMIT_PER_IP="2 per hour")
    world = build_world(app)
    world.ids["inet_terms"] = add_inet_terms(app)
    client = app.test_client()
    for n in range(2):
        assert _apply(client, world, admin_email=f"a{n}@gamma.example").status_code == 302
    assert _apply(client, world, admin_email="a9@gamma.example").status_code == 429


def test_signed_in_people_apply_from_their_portal(app, world):
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.get("/i-net/apply")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_two_submissions_of_one_link_at_once_register_once(app, world):
    """The link works once: of two submissions at once, one registers (302) and the other
    is told the link was used; one organisation, one registration."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    _apply(app.test_client(), world)
    link = _link(app, "taro@gamma.example")
    clients = [app.test_client(), app.test_client()]
    start = threading.Barrier(len(clients))

    def send(client):
        start.wait()
        data = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        return client.post(link, data=data).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(send, clients))
    assert statuses[0] == 302 and statuses[1] in (404, 410)
    assert len(rows(app, Organisation, legal_name="ガンマ株式会社")) == 1
    assert len(rows(app, InetRegistration, channel=RegistrationChannel.PUBLIC)) == 1


def test_two_applications_at_once_register_the_organisation_once(app, world):
    """At most one open registration, whatever races (the unique index decides)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    clients = [client_as(app, world, "sales_agent"), client_as(app, world, "agency_agent")]
    start = threading.Barrier(len(clients))

    def send(client):
        start.wait()
        return client.post("/id-cards/apply", data=CONTACTS).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(send, clients))
    assert statuses == [302, 409]
    assert len(rows(app, InetRegistration, organisation_id=world.org_a)) == 1
