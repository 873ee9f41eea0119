"""R-72: support staff view the portal as a customer user, with a reason, for a limited time,
under a visible banner, with both identities on every record; R-73: the customer sees who."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import AccountEntry, AuditEvent, User, UserSession
from tests.factories import (
    PASSWORD,
    VIEW_AS_REASON,
    build_world,
    row_counts,
    rows,
    sign_in,
    signed_in_client,
    view_as,
)

NEW_PASSWORD = "a much longer new passphrase"


@pytest.fixture
def world(app):
    world = build_world(app)
    with app.app_context():  # a name to look for on the customer's access records
        db.session.get(User, world.ids["support"]).name = "Sato Support"
        db.session.commit()
    return world


@pytest.fixture
def staff(app, world):
    return signed_in_client(app, world.emails["support"])


@pytest.fixture
def viewing(app, world, staff):
    """Support staff viewing org A's portal as A's administrator."""
    view_as(staff, world.org_a, world.ids["admin"])
    return staff


def _entries(app) -> list[AccountEntry]:
    return rows(app, AccountEntry)


def _events(app, **where) -> list[AuditEvent]:
    return rows(app, AuditEvent, **where)


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return match.group(1) if match else None


# --- starting -------------------------------------------------------------------------------


def test_view_as_does_not_start_by_get(app, world, staff):
    before = row_counts(app)
    response = staff.get(f"/staff/organisations/{world.org_a}/view-as")
    assert response.status_code == 405
    assert row_counts(app) == before


@pytest.mark.parametrize(
    "reason",
    ["", "   ", "too short", "         x"],  # none gives 10 characters of reason
)
def test_view_as_needs_a_written_reason(app, world, staff, reason):
    before = row_counts(app)

    response = staff.post(
        f"/staff/organisations/{world.org_a}/view-as",
        data={"as_user_id": world.ids["admin"], "reason": reason},
    )

    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "reason")
    assert row_counts(app) == before  # no entry, no audit event
    assert staff.get("/contracts").status_code == 404  # still in the back office


def test_view_as_only_as_a_user_of_that_organisation(app, world, staff):
    before = row_counts(app)
    response = staff.post(
        f"/staff/organisations/{world.org_a}/view-as",
        data={"as_user_id": world.ids["other_admin"], "reason": VIEW_AS_REASON},
    )
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "as_user_id")
    assert row_counts(app) == before


def test_billing_staff_may_not_view_as_a_customer(app, world):
    billing = app.test_client()
    sign_in(app, billing, world.emails["billing"])
    before = row_counts(app)

    response = billing.post(
        f"/staff/organisations/{world.org_a}/view-as",
        data={"as_user_id": world.ids["admin"], "reason": VIEW_AS_REASON},
    )

    assert response.status_code == 403
    assert row_counts(app) == before
    organisation_page = billing.get(f"/staff/organisations/{world.org_a}").get_data(as_text=True)
    assert "/view-as" not in organisation_page  # no form offered either


def test_view_as_a_member_sees_what_the_member_sees(app, world, staff):
    view_as(staff, world.org_a, world.ids["member"])
    assert staff.get(f"/contracts/{world.contract_a}").status_code == 200
    (entry,) = _entries(app)
    assert entry.as_user_id == world.ids["member"]
    assert entry.reason == VIEW_AS_REASON
    # Issue 13: no more than the member: no invoices, no users, no notices, not in the menu.
    for path in ("/invoices", "/organisation/users", "/notices"):
        assert staff.get(path).status_code == 403, path
    nav = staff.get("/").get_data(as_text=True)
    assert 'href="/invoices"' not in nav and 'href="/organisation/users"' not in nav


# --- while viewing --------------------------------------------------------------------------


def test_every_page_shows_the_banner_with_a_stop_button(app, world, viewing):
    """Every page the viewing staff can reach, error pages included, carries the banner."""
    paths = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and rule.endpoint != "main.healthz"
        and not rule.endpoint.startswith("api.")  # JSON for programs, not pages
        and not rule.rule.endswith(".csv")  # downloads for Excel, not pages (R-60's history)
    ]
    paths += [
        f"/contracts/{world.contract_a}",
        f"/contracts/{world.contract_b}",
        f"/staff/organisations/{world.org_a}",
        f"/staff/contracts/{world.contract_a}",
    ]
    assert "/contracts" in paths and "/access-records" in paths
    for path in paths:
        response = viewing.get(path, follow_redirects=True)
        page = response.get_data(as_text=True)
        banner = re.search(r'<div [^>]*data-testid="entry-banner".*?</div>', page, re.S)
        assert banner, f"{path} ({response.status_code}) has no banner"
        assert 'action="/leave"' in banner[0], path
        assert '<button type="submit"' in banner[0], path
        assert VIEW_AS_REASON in banner[0], path


def test_password_change_is_refused_while_viewing(app, world, viewing):
    with app.app_context():
        hashes = dict(db.session.execute(sa.select(User.id, User.password_hash)).all())

    for data in (
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        {},
    ):
        assert viewing.post("/account/password", data=data).status_code == 403
    assert viewing.get("/account/password").status_code == 403

    with app.app_context():
        assert dict(db.session.execute(sa.select(User.id, User.password_hash)).all()) == hashes
    assert 'href="/account/password"' not in viewing.get("/contracts").get_data(as_text=True)
    assert viewing.get("/contracts").status_code == 200  # still viewing: nothing was ended


@pytest.mark.parametrize(
    "path",
    [
        "/staff/organisations",
        "/staff/organisations/new",
        "/staff/organisations/{org_a}",
        "/staff/contracts/{contract_a}",
    ],
)
def test_back_office_pages_answer_403_while_viewing(app, world, viewing, path):
    url = path.format(org_a=world.org_a, contract_a=world.contract_a)
    assert viewing.get(url).status_code == 403


def test_staff_cannot_start_a_second_view_from_inside(app, world, viewing):
    response = viewing.post(
        f"/staff/organisations/{world.org_b}/view-as",
        data={"as_user_id": world.ids["other_admin"], "reason": VIEW_AS_REASON},
    )
    assert response.status_code == 403
    assert len(_entries(app)) == 1


# --- the record -----------------------------------------------------------------------------


def test_start_requests_and_stop_are_recorded_with_both_identities(app, world, viewing):
    viewing.get("/contracts")
    viewing.get(f"/contracts/{world.contract_a}")
    viewing.get("/account/password")  # refused, and on the record all the same
    response = viewing.post("/leave")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/organisations/{world.org_a}"
    (entry,) = _entries(app)
    assert entry.ended_reason == "stopped"
    assert entry.ended_at == clock.now()
    events = _events(app, entry_id=entry.id)
    assert [e.action for e in events] == [
        "staff_view_started",
        "request",
        "request",
        "request",
        "staff_view_ended",
    ]
    for event in events:
        assert event.user_id == world.ids["support"]
        assert event.as_user_id == world.ids["admin"]
        assert event.organisation_id == world.org_a
    assert events[0].details["reason"] == VIEW_AS_REASON
    assert [(e.details["path"], e.details["status"]) for e in events[1:4]] == [
        ("/contracts", 200),
        (f"/contracts/{world.contract_a}", 200),
        ("/account/password", 403),
    ]
    # After stopping, staff are back in the back office and nothing more is recorded.
    assert viewing.get("/contracts").status_code == 404
    assert viewing.get("/staff/organisations").status_code == 200
    assert len(_events(app, entry_id=entry.id)) == len(events)


def test_signing_out_while_viewing_ends_the_view_on_the_record(app, world, viewing):
    viewing.post("/logout")
    (entry,) = _entries(app)
    assert entry.ended_reason == "signed_out"
    (ended,) = _events(app, action="entry_ended")
    assert (ended.user_id, ended.as_user_id, ended.entry_id) == (
        world.ids["support"],
        world.ids["admin"],
        entry.id,
    )


def test_the_customer_user_is_untouched(app, world, viewing):
    viewing.get("/contracts")
    viewing.post("/language", data={"locale": "ja", "next": "/contracts"})
    viewing.post("/leave")
    with app.app_context():
        admin = db.session.get(User, world.ids["admin"])
        assert admin.last_login_at is None
        assert admin.locale == "en"
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(UserSession)
                .where(UserSession.user_id == admin.id)
            )
            == 0
        )


# --- the time limit -------------------------------------------------------------------------


def test_the_view_ends_by_itself_after_the_time_limit(make_app, fixed_clock):
    app = make_app(VIEW_AS_MAX_MINUTES=20)
    world = build_world(app)
    client = app.test_client()
    sign_in(app, client, world.emails["support"])
    view_as(client, world.org_a, world.ids["admin"])

    clock.set(fixed_clock + timedelta(minutes=19, seconds=59))
    assert client.get("/contracts").status_code == 200
    clock.set(fixed_clock + timedelta(minutes=20))
    response = client.get("/contracts")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/organisations/{world.org_a}"
    (entry,) = _entries(app)
    assert entry.ended_reason == "expired"
    assert entry.expires_at == fixed_clock + timedelta(minutes=20)
    (ended,) = _events(app, action="staff_view_ended")
    assert (ended.user_id, ended.as_user_id, ended.entry_id) == (
        world.ids["support"],
        world.ids["admin"],
        entry.id,
    )
    assert ended.details["reason"] == "expired"
    assert client.get("/contracts").status_code == 404  # out of the customer's portal
    page = client.get(f"/staff/organisations/{world.org_a}").get_data(as_text=True)
    assert 'data-testid="entry-banner"' not in page


def test_expired_entries_are_ended_by_the_scheduled_command(app, world, fixed_clock):
    staff = app.test_client()
    sign_in(app, staff, world.emails["support"])
    view_as(staff, world.org_a, world.ids["admin"])
    clock.set(fixed_clock + timedelta(minutes=45))
    later = app.test_client()  # started 45 minutes later: not expired at +60
    sign_in(app, later, world.emails["support"])
    view_as(later, world.org_b, world.ids["other_admin"])
    agent = app.test_client()
    sign_in(app, agent, world.emails["sales_agent"])
    agent.post(f"/partner/clients/{world.org_a}/enter", data={"purpose": ""})
    clock.set(fixed_clock + timedelta(minutes=61))

    result = app.test_cli_runner().invoke(args=["portal", "end-expired-entries"])

    assert result.exit_code == 0, result.output
    assert "Ended 1 " in result.output
    first, second, agents = _entries(app)
    assert (first.ended_reason, first.ended_at) == ("expired", clock.now())
    assert second.ended_at is None and agents.ended_at is None
    (ended,) = _events(app, action="staff_view_ended")
    assert (ended.user_id, ended.as_user_id, ended.entry_id) == (
        world.ids["support"],
        world.ids["admin"],
        first.id,
    )
    rerun = app.test_cli_runner().invoke(args=["portal", "end-expired-entries"])
    assert "Ended 0 " in rerun.output


# --- the customer sees who entered ----------------------------------------------------


def test_the_customers_administrator_sees_who_entered_when_and_why(app, world, viewing):
    viewing.post("/leave")
    admin = app.test_client()
    sign_in(app, admin, world.emails["admin"])

    page = admin.get("/access-records")

    assert page.status_code == 200
    table = re.search(
        r'data-testid="access-records".*?</table>', page.get_data(as_text=True), re.S
    )[0]
    assert "Sato Support" in table
    assert VIEW_AS_REASON in table
    assert "March 1, 2027 10:00" in table  # 01:00 UTC shown in Tokyo time, to the minute


def test_a_member_does_not_see_the_access_records(app, world, viewing):
    member = app.test_client()
    sign_in(app, member, world.emails["member"])
    response = member.get("/access-records")
    assert response.status_code == 403
    assert VIEW_AS_REASON not in response.get_data(as_text=True)


def test_another_organisations_administrator_does_not_see_the_record(app, world, viewing):
    other = app.test_client()
    sign_in(app, other, world.emails["other_admin"])
    page = other.get("/access-records").get_data(as_text=True)
    assert "Sato Support" not in page
    assert VIEW_AS_REASON not in page


def test_a_form_sent_after_the_time_limit_is_not_handled_under_the_staff_account(
    make_app, fixed_clock
):
    """R-72: when the view has expired, a form meant for the customer's portal is not run as
    the staff member's own request; the staff member lands on the organisation page."""
    app = make_app(VIEW_AS_MAX_MINUTES=20)
    world = build_world(app)
    client = app.test_client()
    sign_in(app, client, world.emails["support"])
    view_as(client, world.org_a, world.ids["admin"])
    clock.set(fixed_clock + timedelta(minutes=21))

    response = client.post(
        "/account/password",
        data={"current_password": "x", "new_password": "y" * 20, "confirm": "y" * 20},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/staff/organisations/{world.org_a}"
    assert not _events(app, action="password_changed")
    (entry,) = _entries(app)
    assert entry.ended_reason == "expired"


def test_starting_twice_at_once_opens_one_view(app, world, staff):
    """The same start sent six times at once from one signed-in browser: one open view
    (the database's unique index on open entries per session decides), no server error."""
    cookie = staff.get_cookie("portal_session")
    browsers = []
    for _ in range(6):
        browser = app.test_client()
        browser.set_cookie("portal_session", cookie.value, domain=cookie.domain)
        browsers.append(browser)
    start = threading.Barrier(len(browsers))

    def submit(browser):
        start.wait()
        return browser.post(
            f"/staff/organisations/{world.org_a}/view-as",
            data={"as_user_id": world.ids["admin"], "reason": VIEW_AS_REASON},
        )

    with ThreadPoolExecutor(len(browsers)) as pool:
        responses = list(pool.map(submit, browsers))

    # Those that arrive after the first committed are already "viewing" and get 403.
    assert {r.status_code for r in responses} <= {302, 403}, [r.status_code for r in responses]
    assert len([e for e in _entries(app) if e.ended_at is None]) == 1
    assert len(_events(app, action="staff_view_started")) == 1
