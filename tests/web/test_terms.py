"""Terms versions and consent (R-60): staff publish a version with notice in advance, by e-mail
to each affected organisation and with a banner in the portal; administrators read what changed
and consent; first use on or after the effective date is deemed consent; agents and staff
viewing as the customer read but never consent (R-71, R-72); onboarding records consent to the
version in force; each organisation sees and downloads its consent history."""

from __future__ import annotations

import csv
import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    ConsentKind,
    Contract,
    ContractStatus,
    CustomerRole,
    Organisation,
    OutboxEmail,
    Service,
    StaffRole,
    TermsConsent,
    TermsVersion,
    User,
    UserKind,
)
from portal.services import terms as terms_service
from tests.factories import (
    add_user,
    application_form,
    build_world,
    enter_client,
    rows,
    signed_in_client,
    snapshot,
    view_as,
)

STAFF_ADMIN = "admin@provider.example"
CUSTOMER_IP = "203.0.113.7"
TOKYO_NOON = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


@pytest.fixture
def world(app):
    """The usual world, a staff administrator, and A's contract and operations contacts."""
    world = build_world(app)
    with app.app_context():
        add_user(
            STAFF_ADMIN, "Provider Admin", kind=UserKind.STAFF, staff_role=StaffRole.ADMINISTRATOR
        )
        alpha = db.session.get(Organisation, world.org_a)
        alpha.contract_contact_email = "contract@alpha.example"
        alpha.operations_contact_email = "ops@alpha.example"
        world.ids["image_works"] = db.session.scalar(
            sa.select(Service.id).where(Service.code == "image_works")
        )
        world.ids["inet"] = db.session.scalar(sa.select(Service.id).where(Service.code == "inet"))
        db.session.commit()
    return world


@pytest.fixture
def staff_admin(app, world):
    return signed_in_client(app, STAFF_ADMIN)


def terms_form(service_id: int, /, **overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "service_id": service_id,
        "title_ja": "IMAGE WORKS 利用規約（改訂）",
        "title_en": "IMAGE WORKS Terms of Service (revised)",
        "body_ja": "第1条 適用\n第15条 通知は電子メールで行います。\n"
        "第19条 改訂は事前に通知します。",
        "body_en": "Art. 1 Scope\nArt. 15 Notices go by e-mail.\n"
        "Art. 19 Revisions are notified in advance.",
        "effective_on": "2027-04-01",
    }
    form.update(overrides)
    return form


def publish(client, service_id: int, /, *, confirmed: str | None = "yes", **overrides: object):
    """Send the form as confirmed on its confirmation page (or, with None, as the form sends
    it first)."""
    form = terms_form(service_id, **overrides)
    if confirmed is not None:
        form["confirmed"] = confirmed
    return client.post("/staff/terms/new", data=form)


def published(app, world, staff_admin, **overrides: object) -> int:
    """Publish an IMAGE WORKS version through the back office; its id."""
    response = publish(staff_admin, world.ids["image_works"], **overrides)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.max(TermsVersion.id)))


def add_version(app, service_id: int, version: int, effective_on: date, **text: str) -> int:
    with app.app_context():
        created = TermsVersion(
            service_id=service_id,
            version=version,
            title_ja=text.get("title_ja", f"規約 第{version}版"),
            title_en=text.get("title_en", f"Terms version {version}"),
            body_ja=text.get("body_ja", "第1条 適用"),
            body_en=text.get("body_en", "Art. 1 Scope"),
            effective_on=effective_on,
        )
        db.session.add(created)
        db.session.commit()
        return created.id


def consents(app, **where: object) -> list[TermsConsent]:
    return rows(app, TermsConsent, **where)


def banners(page: str) -> list[str]:
    found = re.findall(r'data-testid="terms-banner">(.*?)</div>', page, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", b)).split()) for b in found]


def confirmation(page: str) -> str:
    """The summary of a confirmation page (templates/_confirm.html), as text."""
    match = re.search(r'data-testid="confirm-summary">(.*?)</ul>', page, re.S)
    assert match, "no confirmation page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return unescape(match.group(1)) if match else None


def set_clock(day: date, hour: int = 10) -> None:
    """The portal clock at `hour` o'clock in Tokyo on `day`."""
    clock.set(datetime(day.year, day.month, day.day, hour - 9, tzinfo=UTC))


# --- publishing (staff) --------------------------------------------------------------------------


def test_publish_numbers_versions_per_service_and_notifies_affected_organisations(
    app, world, staff_admin
):
    """R-60: the version gets the next number of its service; each organisation with a live
    contract of the service is told by e-mail: administrators, contract and operations
    contacts (IN 16(1)); organisations without one are not."""
    with app.app_context():
        gamma = Organisation(legal_name="Gamma K.K.", billing_email="billing@gamma.example")
        db.session.add(gamma)
        db.session.flush()
        add_user(
            "admin@gamma.example",
            organisation=gamma,
            kind=UserKind.CUSTOMER,
            customer_role=CustomerRole.ADMINISTRATOR,
        )
        # Gamma's only contract has ended: the new terms do not concern it.
        ended = db.session.get(Contract, world.contract_b)
        db.session.add(
            Contract(
                organisation=gamma,
                service_id=ended.service_id,
                plan_id=ended.plan_id,
                monthly_fee=ended.monthly_fee,
                minimum_months=12,
                service_start=date(2025, 1, 5),
                status=ContractStatus.ENDED,
                ended_on=date(2026, 1, 20),
            )
        )
        db.session.commit()

    page = staff_admin.get("/staff/terms/new")
    assert page.status_code == 200
    # Asked first: which version, when, and who will be told (A and B; Gamma's contract ended).
    asked = publish(staff_admin, world.ids["image_works"], confirmed=None)
    assert asked.status_code == 200
    summary = confirmation(asked.get_data(as_text=True))
    assert (
        "Publish version 1 of the terms of IMAGE WORKS, “IMAGE WORKS Terms of Service " in summary
    )
    assert "taking effect on April 1, 2027." in summary
    assert "2 organisations use the service: each is told by e-mail at once" in summary
    assert "cannot be changed or withdrawn" in summary
    assert rows(app, TermsVersion) == [] and rows(app, OutboxEmail) == []
    back = publish(staff_admin, world.ids["image_works"], confirmed="edit")
    assert back.status_code == 200
    assert "Art. 19 Revisions are notified in advance." in unescape(back.get_data(as_text=True))
    assert rows(app, TermsVersion) == []

    response = publish(staff_admin, world.ids["image_works"])
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/terms"

    (version,) = rows(app, TermsVersion)
    assert (version.version, version.effective_on) == (1, date(2027, 4, 1))
    assert version.title_en == "IMAGE WORKS Terms of Service (revised)"
    assert version.published_at == clock.now()
    with app.app_context():
        assert version.published_by_id == db.session.scalar(
            sa.select(User.id).where(User.email == STAFF_ADMIN)
        )
        published_event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "terms_published")
        )
        assert published_event.subject_id == version.id

    emails = rows(app, OutboxEmail, kind="terms_published")
    by_org: dict[int | None, set[str]] = {}
    for email in emails:
        by_org.setdefault(email.organisation_id, set()).add(email.to_address)
        assert email.is_notice and not email.affects_contract
        assert f"/terms/{version.id}" in email.body
        assert "2027" in email.subject and "IMAGE WORKS" in email.subject
        # Each organisation is greeted by its own name, in its own language.
        (organisation,) = rows(app, Organisation, id=email.organisation_id)
        assert organisation.legal_name in email.body and email.locale == organisation.locale
    assert len({e.message_id for e in emails}) == len(emails)
    assert by_org == {
        world.org_a: {"admin@alpha.example", "contract@alpha.example", "ops@alpha.example"},
        # No contract contact registered: the registered notice address (billing) instead.
        world.org_b: {"admin@beta.example", "billing@beta.example"},
    }

    # Next version of the same service: 2; the other service starts at 1.
    assert (
        publish(staff_admin, world.ids["image_works"], effective_on="2027-05-01").status_code == 302
    )
    assert publish(staff_admin, world.ids["inet"], effective_on="2027-04-01").status_code == 302
    numbers = {(v.service_id, v.version) for v in rows(app, TermsVersion)}
    assert numbers == {
        (world.ids["image_works"], 1),
        (world.ids["image_works"], 2),
        (world.ids["inet"], 1),
    }
    # Nobody uses I-NET SERVICE here: no e-mail for it.
    assert len(rows(app, OutboxEmail, kind="terms_published")) == len(emails) * 2

    listing = staff_admin.get("/staff/terms").get_data(as_text=True)
    assert "IMAGE WORKS Terms of Service (revised)" in listing and "Provider Admin" in listing


def test_the_next_version_starts_from_the_latest_text(app, world, staff_admin):
    published(app, world, staff_admin)
    form = staff_admin.get(f"/staff/terms/new?service_id={world.ids['image_works']}")
    page = unescape(form.get_data(as_text=True))
    assert "Art. 19 Revisions are notified in advance." in page
    assert 'value="IMAGE WORKS Terms of Service (revised)"' in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        # R-60: notice in advance; the seeds' terms name no period, so tomorrow at the earliest.
        ({"effective_on": "2027-03-01"}, "effective_on", "March 2, 2027 or later"),
        ({"effective_on": "2027-02-01"}, "effective_on", "March 2, 2027 or later"),
        ({"effective_on": ""}, "effective_on", "Enter the effective date."),
        # Issue 13: a year ahead at most (9999-12-31 was published and e-mailed).
        ({"effective_on": "2028-03-02"}, "effective_on", "March 1, 2028 or earlier"),
        ({"effective_on": "9999-12-31"}, "effective_on", "between 2000 and 2100"),
        ({"body_en": "Terms\x00"}, "body_en", "Remove the control characters"),
        ({"title_ja": ""}, "title_ja", "This field is required."),
        ({"body_en": "   "}, "body_en", "This field is required."),
        ({"service_id": "987654"}, "service_id", "Not a valid choice."),
    ],
)
def test_publish_refuses_bad_input_next_to_the_field_and_changes_nothing(
    app, world, staff_admin, overrides, field, message
):
    before = snapshot(app)
    # Refused before the confirmation page, and when sent confirmed.
    assert publish(staff_admin, world.ids["image_works"], **overrides).status_code == 422
    response = publish(staff_admin, world.ids["image_works"], confirmed=None, **overrides)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in (field_error(page, field) or ""), page[:3000]
    assert "IMAGE WORKS Terms of Service (revised)" in page  # what was typed is kept
    assert snapshot(app) == before


def test_a_new_version_must_take_effect_after_the_previous_one(app, world, staff_admin):
    """Otherwise the older version would come back into force after the newer one."""
    published(app, world, staff_admin, effective_on="2027-05-01")
    before = snapshot(app)
    response = publish(staff_admin, world.ids["image_works"], effective_on="2027-04-15")
    assert response.status_code == 422
    assert "Version 1 takes effect on May 1, 2027" in field_error(
        response.get_data(as_text=True), "effective_on"
    )
    assert snapshot(app) == before


def test_two_publications_at_once_never_share_a_number(app, world, monkeypatch):
    """R-60: the unique (service, version) decides; the loser takes the next number."""
    add_version(app, world.ids["image_works"], 1, date(2027, 3, 20))
    stale = iter([None])  # the first look at the latest version missed the one just published
    real = terms_service.latest_version
    monkeypatch.setattr(
        terms_service, "latest_version", lambda service_id: next(stale, None) or real(service_id)
    )
    client = signed_in_client(app, STAFF_ADMIN)
    assert publish(client, world.ids["image_works"]).status_code == 302
    assert sorted(v.version for v in rows(app, TermsVersion)) == [1, 2]


def test_two_publications_at_once_through_the_web(app, world):
    """Two staff administrators publish the same date at the same moment: one version."""
    clients = [signed_in_client(app, STAFF_ADMIN) for _ in range(2)]
    start = threading.Barrier(len(clients))

    def send(client):
        start.wait()
        return publish(client, world.ids["image_works"]).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(send, clients))
    assert statuses == [302, 422]
    assert [v.version for v in rows(app, TermsVersion)] == [1]


def test_only_staff_administrators_publish_and_see_the_link(app, world, staff_admin):
    assert 'href="/staff/terms"' in staff_admin.get("/staff/organisations").get_data(as_text=True)
    for who in ("support", "billing"):
        client = signed_in_client(app, world.emails[who])
        assert 'href="/staff/terms"' not in client.get("/staff/organisations").get_data(
            as_text=True
        )
        assert client.get("/staff/terms").status_code == 403
        assert publish(client, world.ids["image_works"]).status_code == 403
    assert rows(app, TermsVersion) == []


# --- banner, reading and explicit consent ---------------------------------------------------------


def test_banner_until_an_administrator_consents_explicitly(app, world, staff_admin):
    """R-60: the banner announces the new version on every page of the portal until the
    organisation consents; the consent keeps user, time and IP."""
    version_id = published(app, world, staff_admin)
    admin = signed_in_client(app, world.emails["admin"])
    member = signed_in_client(app, world.emails["member"])
    other = signed_in_client(app, world.emails["other_admin"])

    page = admin.get("/contracts").get_data(as_text=True)
    assert banners(page) == [
        "New terms of service for IMAGE WORKS take effect on April 1, 2027. Read and consent"
    ]
    assert f'href="/terms/{version_id}"' in page
    assert banners(member.get("/contracts").get_data(as_text=True)) == [
        "New terms of service for IMAGE WORKS take effect on April 1, 2027. Read the new terms"
    ]
    assert banners(admin.get("/invoices").get_data(as_text=True))  # every page of the portal

    # Not ticked: the message is next to the box and nothing is recorded.
    before = snapshot(app)
    refused = admin.post(f"/terms/{version_id}/consent", data={})
    assert refused.status_code == 422
    assert "Tick the box" in field_error(refused.get_data(as_text=True), "agree")
    assert snapshot(app) == before

    clock.set(TOKYO_NOON)
    response = admin.post(
        f"/terms/{version_id}/consent",
        data={"agree": "y"},
        environ_base={"REMOTE_ADDR": CUSTOMER_IP},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/terms/{version_id}"

    (consent,) = consents(app)
    assert consent.organisation_id == world.org_a
    assert consent.terms_version_id == version_id
    assert consent.kind == ConsentKind.EXPLICIT
    assert consent.user_id == world.ids["admin"]
    assert consent.consented_at == TOKYO_NOON
    assert consent.ip == CUSTOMER_IP
    with app.app_context():
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "terms_consented")
        )
        assert (event.user_id, event.organisation_id) == (world.ids["admin"], world.org_a)

    for client in (admin, member):
        assert banners(client.get("/contracts").get_data(as_text=True)) == []
    # B has not consented: B still sees it.
    assert len(banners(other.get("/contracts").get_data(as_text=True))) == 1

    page = admin.get(f"/terms/{version_id}").get_data(as_text=True)
    assert 'data-testid="consent-form"' not in page
    assert "Explicit" in page and "admin" in page


def test_members_read_but_may_not_consent(app, world, staff_admin):
    version_id = published(app, world, staff_admin)
    member = signed_in_client(app, world.emails["member"])
    page = member.get(f"/terms/{version_id}")
    assert page.status_code == 200
    assert 'data-testid="consent-form"' not in page.get_data(as_text=True)
    assert member.post(f"/terms/{version_id}/consent", data={"agree": "y"}).status_code == 403
    assert consents(app) == []


def test_a_second_consent_keeps_one_record(app, world, staff_admin):
    version_id = published(app, world, staff_admin)
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.post(f"/terms/{version_id}/consent", data={"agree": "y"}).status_code == 302
    again = admin.post(f"/terms/{version_id}/consent", data={"agree": "y"}, follow_redirects=True)
    assert again.status_code == 200
    assert "already consented" in again.get_data(as_text=True)
    assert len(consents(app)) == 1


def test_consents_at_once_keep_one_record(app, world, staff_admin):
    """R-60: two administrators' consents at the same moment: one row, no error."""
    version_id = published(app, world, staff_admin)
    with app.app_context():
        add_user(
            "second-admin@alpha.example",
            organisation=db.session.get(Organisation, world.org_a),
            kind=UserKind.CUSTOMER,
            customer_role=CustomerRole.ADMINISTRATOR,
        )
        db.session.commit()
    clients = [
        signed_in_client(app, email)
        for email in (world.emails["admin"], "second-admin@alpha.example") * 2
    ]
    start = threading.Barrier(len(clients))

    def send(client):
        start.wait()
        return client.post(f"/terms/{version_id}/consent", data={"agree": "y"}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(send, clients))
    assert statuses == [302] * len(clients)
    assert len(consents(app)) == 1


def test_the_version_page_shows_the_text_in_the_readers_language_and_what_changed(
    app, world, staff_admin
):
    first = add_version(
        app,
        world.ids["image_works"],
        1,
        date(2026, 1, 1),
        body_en="Art. 1 Scope\nArt. 15 Notices go by e-mail.\nArt. 19 Revisions are notified.",
        body_ja="第1条 適用\n第15条 通知は電子メールで行います。\n第19条 改訂は通知します。",
    )
    version_id = published(app, world, staff_admin)
    admin = signed_in_client(app, world.emails["admin"])  # an English-speaking user
    page = admin.get(f"/terms/{version_id}").get_data(as_text=True)
    assert "Art. 19 Revisions are notified in advance." in page
    assert "第19条" not in page
    diff = re.search(r'<ol class="terms-diff".*?</ol>', page, re.S).group(0)
    assert re.search(r"<del>Art. 19 Revisions are notified.</del>", diff)
    assert re.search(r"<ins>Art. 19 Revisions are notified in advance.</ins>", diff)
    assert "<del>Art. 15" not in diff and "<ins>Art. 15" not in diff  # unchanged
    assert "style=" not in page  # the CSP forbids inline styles

    admin.post("/language", data={"locale": "ja", "next": "/contracts"})
    page = admin.get(f"/terms/{version_id}").get_data(as_text=True)
    assert "<ins>第19条 改訂は事前に通知します。</ins>" in page

    # The first version has nothing to compare with.
    first_page = admin.get(f"/terms/{first}").get_data(as_text=True)
    assert "terms-diff" not in first_page


def test_versions_of_services_the_organisation_does_not_use_answer_404(app, world, staff_admin):
    inet_version = add_version(app, world.ids["inet"], 1, date(2027, 4, 1))
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.get(f"/terms/{inet_version}").status_code == 404
    assert admin.post(f"/terms/{inet_version}/consent", data={"agree": "y"}).status_code == 404
    assert admin.get("/terms/987654").status_code == 404
    assert consents(app) == []
    # An ended contract no longer makes the service's terms the organisation's concern.
    version_id = published(app, world, staff_admin)
    with app.app_context():
        db.session.execute(
            sa.update(Contract)
            .where(Contract.organisation_id == world.org_a)
            .values(status=ContractStatus.ENDED, ended_on=date(2027, 2, 20))
        )
        db.session.commit()
    assert admin.get(f"/terms/{version_id}").status_code == 404
    assert banners(admin.get("/contracts").get_data(as_text=True)) == []


def test_a_replaced_version_is_not_consented_to(app, world):
    old = add_version(app, world.ids["image_works"], 1, date(2026, 1, 1))
    current = add_version(app, world.ids["image_works"], 2, date(2027, 1, 1))
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get(f"/terms/{old}").get_data(as_text=True)
    assert "Replaced by a later version" in page and 'data-testid="consent-form"' not in page
    response = admin.post(f"/terms/{old}/consent", data={"agree": "y"})
    assert response.status_code == 409
    assert "A later version of these terms is in force" in response.get_data(as_text=True)
    # Only the version in force was consented to (deemed, by the administrator's first use).
    assert [(c.terms_version_id, c.kind) for c in consents(app)] == [(current, ConsentKind.DEEMED)]


# --- deemed consent ------------------------------------------------------------------------------


def test_first_use_on_the_effective_date_is_deemed_consent(app, world, staff_admin):
    """R-60 (IN 16(2)): using the service on or after the effective date counts as consent,
    recorded once, by the customer user whose request it was; not before that day."""
    version_id = published(app, world, staff_admin, effective_on="2027-03-10")
    set_clock(date(2027, 3, 9), hour=23)
    assert signed_in_client(app, world.emails["member"]).get("/contracts").status_code == 200
    assert consents(app) == []

    set_clock(date(2027, 3, 10), hour=9)
    member = signed_in_client(app, world.emails["member"])
    admin = signed_in_client(app, world.emails["admin"])
    page = member.get("/contracts", environ_base={"REMOTE_ADDR": CUSTOMER_IP})
    assert page.status_code == 200
    assert banners(page.get_data(as_text=True)) == []
    (consent,) = consents(app)
    assert consent.kind == ConsentKind.DEEMED
    assert (consent.organisation_id, consent.terms_version_id) == (world.org_a, version_id)
    assert consent.user_id == world.ids["member"]
    assert consent.consented_at == clock.now()
    assert consent.ip == CUSTOMER_IP

    # Later use, by anyone of A, records nothing more.
    admin.get("/contracts")
    member.get("/terms")
    assert len(consents(app)) == 1
    history = admin.get("/terms").get_data(as_text=True)
    assert "Deemed (used after the effective date)" in history


def test_upcoming_versions_are_never_deemed_consented(app, world, staff_admin):
    published(app, world, staff_admin, effective_on="2027-04-01")
    set_clock(date(2027, 3, 31), hour=23)
    signed_in_client(app, world.emails["admin"]).get("/contracts")
    assert consents(app) == []


def test_agents_and_viewing_staff_read_but_never_consent(app, world, staff_admin):
    """R-60/R-71/R-72: agents of both kinds and staff viewing as the customer read the terms,
    get no consent form, are refused (403) when they post one, and their requests after the
    effective date record no deemed consent."""
    version_id = published(app, world, staff_admin, effective_on="2027-03-10")
    set_clock(date(2027, 3, 11))

    for who in ("sales_agent", "agency_agent", "support_viewing"):
        client = app.test_client()
        if who == "support_viewing":
            signed = signed_in_client(app, world.emails["support"])
            view_as(signed, world.org_a, world.ids["admin"])
            client = signed
        else:
            client = signed_in_client(app, world.emails[who])
            enter_client(client, world.org_a)

        home = client.get("/contracts").get_data(as_text=True)
        assert banners(home) == [
            "New terms of service for IMAGE WORKS took effect on March 10, 2027. Read the new terms"
        ], who
        page = client.get(f"/terms/{version_id}")
        assert page.status_code == 200, who
        text = page.get_data(as_text=True)
        assert 'data-testid="consent-form"' not in text, who
        assert "IMAGE WORKS Terms of Service (revised)" in text
        assert client.get("/terms").status_code == 200, who
        assert client.get("/terms/consents.csv").status_code == 200, who
        refused = client.post(f"/terms/{version_id}/consent", data={"agree": "y"})
        assert refused.status_code == 403, who
        assert consents(app) == [], who

    # A's own administrator comes later: their use is what counts.
    signed_in_client(app, world.emails["admin"]).get("/contracts")
    (consent,) = consents(app)
    assert (consent.kind, consent.user_id) == (ConsentKind.DEEMED, world.ids["admin"])


# --- onboarding, history and CSV ---------------------------------------------------------------


def test_onboarding_records_consent_to_the_version_in_force(app, world):
    """The application form accepts the terms in force: consent ON APPLICATION, by the new
    organisation's first administrator; an upcoming version stays to be consented to."""
    in_force = add_version(app, world.ids["image_works"], 1, date(2026, 1, 1))
    upcoming = add_version(app, world.ids["image_works"], 2, date(2027, 4, 1))
    support = signed_in_client(app, world.emails["support"])
    response = support.post(
        "/staff/organisations/new",
        data={**application_form(world.ids["plan_small"]), "confirmed": "yes"},
    )
    assert response.status_code == 302
    with app.app_context():
        administrator = db.session.scalar(
            sa.select(User).where(User.email == "admin@gamma.example")
        )
        organisation_id, administrator_id = administrator.organisation_id, administrator.id
    (consent,) = consents(app, organisation_id=organisation_id)
    assert consent.kind == ConsentKind.APPLICATION
    assert consent.terms_version_id == in_force
    assert consent.user_id == administrator_id
    assert consent.consented_at == clock.now()
    with app.app_context():
        assert [v.id for v in terms_service.outstanding(organisation_id, clock.today())] == [
            upcoming
        ]


def test_onboarding_without_terms_in_force_records_nothing(app, world):
    add_version(app, world.ids["image_works"], 1, date(2027, 4, 1))
    support = signed_in_client(app, world.emails["support"])
    form = {**application_form(world.ids["plan_small"]), "confirmed": "yes"}
    assert support.post("/staff/organisations/new", data=form).status_code == 302
    assert consents(app) == []


def test_consent_history_page_and_csv(app, world, staff_admin):
    """R-60: version, who, when (Tokyo), explicit, deemed or on application; as CSV for Excel
    (UTF-8 with a BOM)."""
    first = add_version(app, world.ids["image_works"], 1, date(2027, 3, 1))
    with app.app_context():
        db.session.add(
            TermsConsent(
                organisation_id=world.org_a,
                terms_version_id=first,
                kind=ConsentKind.APPLICATION,
                user_id=world.ids["admin"],
                consented_at=datetime(2026, 10, 20, 1, 30, tzinfo=UTC),
            )
        )
        db.session.commit()
    second = published(app, world, staff_admin, effective_on="2027-04-01")
    admin = signed_in_client(app, world.emails["admin"])
    clock.set(TOKYO_NOON)
    admin.post(f"/terms/{second}/consent", data={"agree": "y"})

    member = signed_in_client(app, world.emails["member"])
    page = member.get("/terms").get_data(as_text=True)
    history = re.search(r'data-testid="consent-history">(.*?)</table>', page, re.S).group(1)
    cells = [
        [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<td>(.*?)</td>", r, re.S)
        ]
        for r in re.findall(r"<tr>(.*?)</tr>", history, re.S)
        if "<td>" in r
    ]
    assert [row[2:4] for row in cells] == [
        ["Explicit", "admin"],
        ["On the application form", "admin"],
    ]
    assert cells[0][1].startswith("Version 2")
    assert cells[0][4] == "March 1, 2027 12:00"  # Tokyo time, written as people write it
    assert "<th>Consented by</th>" in page

    response = member.get("/terms/consents.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0][:6] == [
        "Service",
        "Version",
        "Title",
        "Effective date",
        "Consent",
        "Consented by",
    ]
    assert table[1] == [
        "IMAGE WORKS",
        "2",
        "IMAGE WORKS Terms of Service (revised)",
        "2027-04-01",
        "Explicit",
        "admin",
        "admin@alpha.example",
        "2027-03-01 12:00:00",
    ]
    assert table[2][4:] == [
        "On the application form",
        "admin",
        "admin@alpha.example",
        "2026-10-20 10:30:00",
    ]
    # Only B's own consents for B: its administrator's first use deemed version 1 consented.
    other = signed_in_client(app, world.emails["other_admin"]).get("/terms/consents.csv")
    other_table = list(csv.reader(io.StringIO(other.get_data().decode("utf-8-sig"))))
    assert [row[4:7] for row in other_table[1:]] == [
        ["Deemed (used after the effective date)", "admin", "admin@beta.example"]
    ]


def test_customer_navigation_links_to_the_terms(app, world):
    for who in ("admin", "member"):
        page = signed_in_client(app, world.emails[who]).get("/contracts").get_data(as_text=True)
        assert 'href="/terms"' in page, who


def test_a_name_a_spreadsheet_would_run_is_exported_as_text(app, world):
    """Issue 13: an administrator named =HYPERLINK(...) (here in its full-width form) appears in
    the consents CSV as text, never as a formula."""
    version = add_version(app, world.ids["image_works"], 1, date(2027, 3, 1))
    with app.app_context():
        admin = db.session.get(User, world.ids["admin"])
        admin.name = '＝HYPERLINK("http://x","a")'
        db.session.add(
            TermsConsent(
                organisation_id=world.org_a,
                terms_version_id=version,
                kind=ConsentKind.EXPLICIT,
                user_id=world.ids["admin"],
            )
        )
        db.session.commit()
    client = signed_in_client(app, world.emails["admin"])
    body = client.get("/terms/consents.csv").get_data().decode("utf-8-sig")
    (row,) = list(csv.reader(io.StringIO(body)))[1:]
    assert row[5] == '\'＝HYPERLINK("http://x","a")'
