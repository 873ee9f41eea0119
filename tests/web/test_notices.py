"""Notices kept (R-61): every notice sent to an organisation, with the time it was sent, and
those that start, change or end a contract marked as such; shown to the administrators,
sales agents and staff viewing as the customer, never to members or agencies (R-71)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from portal.clock import clock
from portal.extensions import db
from portal.models import Organisation, OutboxEmail
from portal.services import mail
from portal.services.information import FieldChange
from tests.factories import (
    build_world,
    enter_client,
    quote_form,
    rows,
    signed_in_client,
    view_as,
)


@pytest.fixture
def world(app):
    return build_world(app)


def write_notice(
    app,
    organisation_id: int,
    *,
    changed_by: str = "Admin",
    sent: bool = False,
    notice: bool = True,
) -> int:
    """One information_changed e-mail to the organisation: a notice, or (notice=False) an
    account e-mail such as a password reset."""
    with app.test_request_context():
        organisation = db.session.get(Organisation, organisation_id)
        context = {
            "changes": [FieldChange("phone", "03-5555-6666", "03-1111-2222")],
            "changed_by": changed_by,
            "changed_at": clock.now(),
        }
        if notice:
            (email,) = mail.notify_organisation(
                organisation, "information_changed", context=context
            )
        else:
            email = mail.enqueue(
                "information_changed",
                to=organisation.billing_email,
                locale="en",
                context={"organisation": organisation, **context},
                organisation_id=organisation.id,
            )
        if sent:
            email.sent_at = clock.now() + timedelta(minutes=3)
        db.session.commit()
        return email.id


def listed(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-testid="notice-(\d+)"', page)]


@pytest.fixture
def admin(app, world):
    return signed_in_client(app, world.emails["admin"])


def test_r61_administrators_see_each_notice_with_the_time_it_was_sent(app, world, admin):
    waiting = write_notice(app, world.org_a, changed_by="First")
    sent = write_notice(app, world.org_a, changed_by="Second", sent=True)
    write_notice(app, world.org_b)
    page = admin.get("/notices").get_data(as_text=True)
    assert listed(page) == [sent, waiting]  # newest first, org A's only
    row = page[page.index(f'data-testid="notice-{sent}"') :]
    assert "March 1, 2027 10:03" in row[: row.index("</tr>")]  # sent_at in Tokyo time
    row = page[page.index(f'data-testid="notice-{waiting}"') :]
    assert "Waiting to be sent" in row[: row.index("</tr>")]
    assert "billing@alpha.example" in page
    (stored,) = rows(app, OutboxEmail, id=sent)
    assert "Alpha K.K." in stored.subject and stored.subject in page  # in A's language


def test_r61_notices_that_start_change_or_end_a_contract_are_marked(app, world, admin):
    information = write_notice(app, world.org_a)
    response = admin.post(
        f"/contracts/{world.contract_a}/requests",
        data=quote_form(app, world.contract_a),
    )
    assert response.status_code == 302
    (request_notice, *_) = rows(app, OutboxEmail, kind="request_submitted")
    assert request_notice.affects_contract
    page = admin.get("/notices").get_data(as_text=True)

    def row(email_id):
        start = page.index(f'data-testid="notice-{email_id}"')
        return page[start : page.index("</tr>", start)]

    assert 'data-testid="affects-contract"' in row(request_notice.id)
    assert 'data-testid="affects-contract"' not in row(information)
    detail = admin.get(f"/notices/{request_notice.id}").get_data(as_text=True)
    assert 'data-testid="affects-contract"' in detail


def test_r61_a_notice_is_shown_whole_as_plain_text_safely(app, world, admin):
    email_id = write_notice(app, world.org_a, changed_by='<script>alert("x")</script> & Co.')
    response = admin.get(f"/notices/{email_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page
    (email,) = rows(app, OutboxEmail, id=email_id)
    body = re.search(r'<pre class="notice-body" data-testid="notice-body">(.*?)</pre>', page, re.S)
    assert unescape(body.group(1)) == email.body  # whole, line breaks and all
    assert "&lt;script&gt;" in body.group(1)
    assert "03-5555-6666 → 03-1111-2222" in email.body and "\n" in email.body
    assert 'data-testid="recipient">billing@alpha.example<' in page
    assert "Waiting to be sent" in page


def test_r61_another_organisations_notice_and_account_emails_are_not_found(app, world, admin):
    other = write_notice(app, world.org_b)
    account_email = write_notice(app, world.org_a, notice=False)  # e.g. a password reset
    assert admin.get(f"/notices/{other}").status_code == 404
    assert admin.get(f"/notices/{account_email}").status_code == 404
    assert account_email not in listed(admin.get("/notices").get_data(as_text=True))
    beta = signed_in_client(app, world.emails["other_admin"])
    assert beta.get(f"/notices/{other}").status_code == 200


def test_r61_the_notices_page_by_page(app, world, admin):
    with app.test_request_context():
        organisation = db.session.get(Organisation, world.org_a)
        for n in range(55):
            context = {"changes": [], "changed_by": f"Admin {n}", "changed_at": clock.now()}
            mail.notify_organisation(organisation, "information_changed", context=context)
        db.session.commit()
    ids = [e.id for e in rows(app, OutboxEmail, organisation_id=world.org_a)]
    first = admin.get("/notices").get_data(as_text=True)
    assert listed(first) == sorted(ids, reverse=True)[:50]
    assert 'href="/notices?page=2" rel="next"' in first
    second = admin.get("/notices?page=2").get_data(as_text=True)
    assert listed(second) == sorted(ids, reverse=True)[50:]
    assert 'rel="next"' not in second and 'href="/notices?page=1" rel="prev"' in second


@pytest.mark.parametrize(
    ("actor", "status"),
    [("member", 403), ("agency_agent", 403), ("sales_agent", 200), ("support_viewing", 200)],
)
def test_r71_r72_who_reads_the_notices(app, world, actor, status):
    """Members do not; agencies never (notices carry fees, R-71); sales agents for their
    clients and staff viewing as the customer do (R-72)."""
    email_id = write_notice(app, world.org_a)
    if actor == "support_viewing":
        client = signed_in_client(app, world.emails["support"])
        view_as(client, world.org_a, world.ids["admin"])
    else:
        client = signed_in_client(app, world.emails[actor])
        if actor.endswith("agent"):
            enter_client(client, world.org_a)
    assert client.get("/notices").status_code == status
    assert client.get(f"/notices/{email_id}").status_code == status
    navigation = client.get("/contracts").get_data(as_text=True)
    assert ('href="/notices"' in navigation) is (status == 200)
    assert 'href="/organisation"' in navigation  # everyone inside the portal reads that


def _notify(
    app, organisation_id: int, to: list[str], *, changed_by: str, at_micro: int
) -> list[int]:
    """One notice to several addresses, written as in production: the column default gives
    each e-mail its own instant, microseconds apart (set here, so the test is exact)."""
    with app.test_request_context():
        organisation = db.session.get(Organisation, organisation_id)
        context = {"changes": [], "changed_by": changed_by, "changed_at": clock.now()}
        emails = mail.notify_organisation(
            organisation, "information_changed", to=to, context=context
        )
        for n, email in enumerate(emails):
            email.created_at = clock.now() + timedelta(microseconds=at_micro + n)
        db.session.commit()
        return [e.id for e in emails]


def test_r61_a_notice_to_several_addresses_is_listed_once_with_all_its_recipients(
    app, world, admin
):
    """Each notice once, not once per recipient: its e-mails (one subject and text, written
    together) make one row naming every address; a notice with other text written in the
    same second, or the same text written later, is a notice of its own."""
    to = ["billing@alpha.example", "admin@alpha.example", "ops@alpha.example"]
    together = _notify(app, world.org_a, to, changed_by="Admin", at_micro=999_000)
    other_text = _notify(app, world.org_a, to[:1], changed_by="Member", at_micro=999_500)
    clock.set(clock.now() + timedelta(minutes=1))
    later = _notify(app, world.org_a, to[:2], changed_by="Admin", at_micro=0)
    with app.app_context():  # one recipient's e-mail went out, the others wait
        db.session.get(OutboxEmail, together[1]).sent_at = clock.now()
        db.session.commit()

    page = admin.get("/notices").get_data(as_text=True)

    assert listed(page) == [later[0], other_text[0], together[0]]
    row = page[page.index(f'data-testid="notice-{together[0]}"') :]
    row = row[: row.index("</tr>")]
    assert re.findall(r'data-testid="recipient">([^<]+)<', row) == to
    assert "March 1, 2027 10:01" in row  # given when its first e-mail was sent
    assert row.count("Waiting to be sent") == 2  # the two recipients still waiting
    detail = admin.get(f"/notices/{together[2]}").get_data(as_text=True)
    assert re.findall(r'data-testid="recipient">([^<]+)<', detail) == to
    staff = signed_in_client(app, world.emails["support"])
    organisation_page = staff.get(f"/staff/organisations/{world.org_a}").get_data(as_text=True)
    assert listed(organisation_page) == [later[0], other_text[0], together[0]]
