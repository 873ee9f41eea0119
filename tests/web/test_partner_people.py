"""A partner company manages its own people (issue 14, item 3; R-71, R-63): its administrators
invite, re-invite and remove the company's agents and see which agent acted for which client;
the provider's support staff invite a partner's first agents and administrators.

R-71: each agent acts only for the clients of its own company, so one company's administrator
never reaches another company's agents or their entries. R-63: logins belong to named users
who choose their own password; removing one ends every session of theirs at once.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountEntry,
    AuditEvent,
    EntryKind,
    OutboxEmail,
    PartnerAssignment,
    PartnerRole,
    User,
    UserKind,
    UserSession,
)
from tests.conftest import DEFAULT_NOW
from tests.factories import (
    PASSWORD,
    add_user,
    build_world,
    enter_client,
    rows,
    signed_in_client,
    snapshot,
)

NEW_PASSWORD = "a fresh and long passphrase"
CONFIRMED = {"confirmed": "yes"}
NEUTRAL = "This address cannot be used for a new user. Ask the person for another one."


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def admin(app, world):
    """The administrator of A's sales agent company, signed in (not inside a client)."""
    return signed_in_client(app, world.emails["partner_admin"])


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _error(page: str, field: str) -> str | None:
    """The error message shown next to a form field (see _macros.html)."""
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return unescape(match.group(1)) if match else None


def _invite(client, email: str = "new.agent@sales.example", **overrides: str):
    data = {"name": "New Agent", "email": email, "role": "agent", "locale": "ja"}
    return client.post("/partner/people", data={**data, **overrides})


def _user(app, email: str) -> User:
    (user,) = rows(app, User, email=email)
    return user


def _actions(app) -> list[str]:
    return [e.action for e in rows(app, AuditEvent)]


def _link(email: OutboxEmail) -> str:
    match = re.search(r"https?://\S+(/invitation/\S+)", email.body)
    assert match, email.body
    return match.group(1)


def _add_agent(app, world, email: str, *, role=PartnerRole.AGENT, partner="sales_partner"):
    with app.app_context():
        user = add_user(
            email, kind=UserKind.AGENT, partner_id=world.ids[partner], partner_role=role
        )
        db.session.commit()
        return user.id


def _leave(client) -> None:
    assert client.post("/leave").status_code == 302


# --- inviting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "locale", "words"),
    [
        ("agent", "ja", "ログインID"),  # the e-mail in the invitee's language
        ("administrator", "en", "as an administrator of Sales Agent Co."),
    ],
)
def test_r71_an_administrator_invites_an_agent_who_accepts_and_lands_on_his_clients(
    app, world, admin, role, locale, words
):
    response = _invite(admin, role=role, locale=locale)

    assert response.status_code == 302
    assert response.headers["Location"] == "/partner/people"
    invited = _user(app, "new.agent@sales.example")
    assert invited.kind == UserKind.AGENT
    assert invited.partner_id == world.ids["sales_partner"]  # the administrator's own company
    assert invited.partner_role == PartnerRole(role)
    assert invited.organisation_id is None and invited.active
    assert invited.password_changed_at is None  # nobody but the invitee knows it
    (email,) = rows(app, OutboxEmail, kind="partner_agent_invitation")
    assert email.to_address == "new.agent@sales.example" and email.locale == locale
    assert "Sales Agent Co." in email.subject and "Sales Agent Co." in email.body
    assert words in email.body
    # Listed with its pending invitation; on the record as the administrator's, outside any
    # client's record.
    page = _text(admin.get("/partner/people"))
    row = page[page.index(f'data-testid="agent-{invited.id}"') :]
    assert "Invited, link valid until" in row[: row.index("</tr>")]
    (event,) = [e for e in rows(app, AuditEvent) if e.action == "agent.invited"]
    assert event.user_id == world.ids["partner_admin"] and event.organisation_id is None

    browser = app.test_client()
    link = _link(email)
    assert "Sales Agent Co." in _text(browser.get(link))
    accepted = browser.post(link, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert accepted.status_code == 302
    login = browser.get(accepted.headers["Location"])
    next_ = parse_qs(urlsplit(accepted.headers["Location"]).query)["next"][0]
    assert next_ == "/partner/clients" and login.status_code == 200
    signed_in = browser.post(
        "/login",
        data={"email": "new.agent@sales.example", "password": NEW_PASSWORD, "next": next_},
    )
    assert signed_in.headers["Location"] == "/partner/clients"
    clients = _text(browser.get("/partner/clients"))
    assert f"/partner/clients/{world.org_a}/enter" in clients  # A is the company's client
    assert f"/partner/clients/{world.org_b}/enter" not in clients


def test_an_address_in_use_or_bad_input_is_refused_next_to_the_field(app, world, admin):
    before = snapshot(app, skip=("user_sessions",))
    # A customer's address: whose it is is not the partner's to learn (the neutral answer).
    response = _invite(admin, email="Admin@Alpha.example")
    assert response.status_code == 422
    assert _error(_text(response), "email") == NEUTRAL
    # An agent of the company's own: named as such.
    response = _invite(admin, email=world.emails["sales_agent"])
    assert _error(_text(response), "email") == "A user with this e-mail address already exists."
    for data, field in (
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"email": "not an address"}, "email"),
        ({"email": "a@b.example" + "x" * 10_000}, "email"),
        ({"role": "owner"}, "role"),
        ({"locale": "fr"}, "locale"),
    ):
        response = _invite(admin, **data)
        assert response.status_code == 422, data
        assert _error(_text(response), field), data
    assert snapshot(app, skip=("user_sessions",)) == before


def test_the_same_address_invited_twice_at_once_makes_one_agent(app, world):
    """The unique index on users.email decides between two invitations at once; the other is
    told calmly (422), never a 500."""
    clients = [signed_in_client(app, world.emails["partner_admin"]) for _ in range(2)]
    start = threading.Barrier(len(clients))

    def invite(client):
        start.wait()
        return _invite(client, email="twice@sales.example").status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = sorted(pool.map(invite, clients))

    assert answers == [302, 422]
    assert len(rows(app, User, email="twice@sales.example")) == 1
    assert len(rows(app, OutboxEmail, kind="partner_agent_invitation")) == 1


def test_r63_resending_an_invitation_replaces_the_link(app, world, admin):
    _invite(admin)
    invited = _user(app, "new.agent@sales.example")
    first = _link(rows(app, OutboxEmail, kind="partner_agent_invitation")[0])

    response = admin.post(f"/partner/people/{invited.id}/resend")

    assert response.status_code == 302 and response.headers["Location"] == "/partner/people"
    emails = rows(app, OutboxEmail, kind="partner_agent_invitation")
    assert len(emails) == 2
    browser = app.test_client()
    assert browser.get(first).status_code == 410  # the earlier link stopped working
    assert browser.get(_link(emails[-1])).status_code == 200
    # An agent who has his password has no invitation to send again.
    response = admin.post(f"/partner/people/{world.ids['sales_agent']}/resend")
    assert response.status_code == 409
    assert "already accepted the invitation" in _text(response)


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sales_agent", "agency_agent", "other_sales_agent"])
def test_r71_agents_who_are_not_administrators_get_403_on_every_people_route(app, world, kind):
    client = signed_in_client(app, world.emails[kind])
    colleague = _add_agent(app, world, f"colleague-{kind}@example.com", partner=_partner(kind))
    before = snapshot(app, skip=("user_sessions", "audit_events"))
    assert client.get("/partner/people").status_code == 403
    assert client.get("/partner/activity").status_code == 403
    assert _invite(client).status_code == 403
    for action in ("resend", "remove"):
        response = client.post(f"/partner/people/{colleague}/{action}", data=CONFIRMED)
        assert response.status_code == 403, action
    assert snapshot(app, skip=("user_sessions", "audit_events")) == before
    # No link to the page in their navigation.
    assert 'href="/partner/people"' not in _text(client.get("/partner/clients"))


def _partner(kind: str) -> str:
    return {
        "sales_agent": "sales_partner",
        "agency_agent": "agency_partner",
        "other_sales_agent": "other_sales_partner",
    }[kind]


@pytest.mark.parametrize("kind", ["admin", "member", "support", "billing"])
def test_customers_and_staff_find_no_people_pages(app, world, kind):
    client = signed_in_client(app, world.emails[kind])
    agent = world.ids["sales_agent"]
    assert client.get("/partner/people").status_code == 404
    assert client.get("/partner/activity").status_code == 404
    assert _invite(client).status_code == 404
    assert client.post(f"/partner/people/{agent}/resend").status_code == 404
    assert client.post(f"/partner/people/{agent}/remove", data=CONFIRMED).status_code == 404
    assert rows(app, User, email="new.agent@sales.example") == []


def test_r71_another_companys_agent_answers_404(app, world, admin):
    other = world.ids["other_sales_agent"]
    before = snapshot(app, skip=("user_sessions",))
    assert admin.post(f"/partner/people/{other}/resend").status_code == 404
    for data in ({}, CONFIRMED):
        assert admin.post(f"/partner/people/{other}/remove", data=data).status_code == 404
    assert admin.post("/partner/people/987654/remove", data=CONFIRMED).status_code == 404
    assert snapshot(app, skip=("user_sessions",)) == before
    page = _text(admin.get("/partner/people"))
    assert world.emails["other_sales_agent"] not in page
    assert world.emails["agency_agent"] not in page  # A's agency is another company too
    assert world.emails["sales_agent"] in page


def test_the_people_link_is_in_the_administrators_navigation(app, world, admin):
    assert 'href="/partner/people"' in _text(admin.get("/partner/clients"))
    assert 'href="/partner/activity"' in _text(admin.get("/partner/people"))


def test_r71_the_administrator_remains_an_agent(app, world, admin):
    """He works the worklist and acts for the company's clients like any agent."""
    assert f"/partner/clients/{world.org_a}/enter" in _text(admin.get("/partner/clients"))
    enter_client(admin, world.org_a, "Renewal call")
    assert admin.get("/contracts").status_code == 200
    # Inside a client's portal his people pages still answer, off the client's record.
    assert admin.get("/partner/people").status_code == 200


# --- removing -----------------------------------------------------------------------------------


def test_r63_removing_asks_first_then_signs_the_agent_out_and_ends_his_entry(app, world, admin):
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a, "Plan change")
    target = f"/partner/people/{world.ids['sales_agent']}/remove"
    before = snapshot(app, skip=("user_sessions",))

    asked = admin.post(target)
    assert asked.status_code == 200
    summary = _text(asked)
    assert 'data-testid="confirm-summary"' in summary
    assert world.emails["sales_agent"] in summary and "signed out everywhere" in summary
    assert admin.post(target, data={"confirmed": "edit"}).headers["Location"] == "/partner/people"
    assert snapshot(app, skip=("user_sessions",)) == before  # asking changed nothing
    assert agent.get("/contracts").status_code == 200

    done = admin.post(target, data=CONFIRMED)

    assert done.status_code == 302 and done.headers["Location"] == "/partner/people"
    removed = _user(app, world.emails["sales_agent"])
    assert not removed.active
    # His next request finds no session: sign in first, and he cannot.
    response = agent.get("/partner/clients")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert all(s.ended_at for s in rows(app, UserSession, user_id=removed.id))
    login = app.test_client().post(
        "/login", data={"email": world.emails["sales_agent"], "password": PASSWORD}
    )
    assert login.status_code == 422
    # His entry into A ended, on A's record, with the reason.
    (entry,) = rows(app, AccountEntry, user_id=removed.id)
    assert entry.ended_at is not None and entry.ended_reason == "agent_removed"
    ended = [e for e in rows(app, AuditEvent) if e.action == "agent_entry_ended"]
    assert [(e.organisation_id, e.user_id) for e in ended] == [
        (world.org_a, world.ids["partner_admin"])
    ]
    assert "agent.removed" in _actions(app)
    page = _text(admin.get("/partner/people"))
    row = page[page.index(f'data-testid="agent-{removed.id}"') :]
    assert "Removed" in row[: row.index("</tr>")]


def test_r71_nobody_removes_himself(app, world, admin):
    page = _text(admin.get("/partner/people"))
    assert f"/partner/people/{world.ids['partner_admin']}/remove" not in page
    before = snapshot(app, skip=("user_sessions",))
    for data in ({}, CONFIRMED):
        response = admin.post(f"/partner/people/{world.ids['partner_admin']}/remove", data=data)
        assert response.status_code == 409
        assert "You cannot remove yourself." in _text(response)
    assert snapshot(app, skip=("user_sessions",)) == before


def test_r71_the_last_administrator_stays(app, world, admin):
    """With two administrators one may remove the other; the one left can be removed by
    nobody: not by himself, not by a plain agent."""
    second = _add_agent(app, world, "second.admin@sales.example", role=PartnerRole.ADMINISTRATOR)
    other = signed_in_client(app, "second.admin@sales.example")
    asked = other.post(f"/partner/people/{world.ids['partner_admin']}/remove")
    assert asked.status_code == 200  # allowed: another administrator remains (the asker)

    assert admin.post(f"/partner/people/{second}/remove", data=CONFIRMED).status_code == 302

    last = f"/partner/people/{world.ids['partner_admin']}/remove"
    assert admin.post(last, data=CONFIRMED).status_code == 409
    plain = signed_in_client(app, world.emails["sales_agent"])
    assert plain.post(last, data=CONFIRMED).status_code == 403
    assert _user(app, world.emails["partner_admin"]).active


def test_r71_two_administrators_removing_each_other_at_once_leave_one(app, world):
    """The company keeps an administrator: the database serialises the two removals (the
    company's row lock; SQLite's write lock), and the second finds its own administrator
    gone."""
    second = _add_agent(app, world, "second.admin@sales.example", role=PartnerRole.ADMINISTRATOR)
    first = signed_in_client(app, world.emails["partner_admin"])
    other = signed_in_client(app, "second.admin@sales.example")
    moves = [(first, second), (other, world.ids["partner_admin"])]
    start = threading.Barrier(len(moves))

    def remove(move):
        client, target = move
        start.wait()
        response = client.post(f"/partner/people/{target}/remove", data=CONFIRMED)
        return response.status_code, urlsplit(response.headers.get("Location", "")).path

    with ThreadPoolExecutor(len(moves)) as pool:
        answers = sorted(pool.map(remove, moves))

    with app.app_context():
        admins = db.session.scalars(
            sa.select(User.id).where(
                User.partner_id == world.ids["sales_partner"],
                User.partner_role == PartnerRole.ADMINISTRATOR,
                User.active.is_(True),
            )
        ).all()
    assert len(admins) == 1
    assert (302, "/partner/people") in answers
    # The other was refused, or found itself signed out before it got that far.
    assert set(answers) <= {(302, "/partner/people"), (403, ""), (302, "/login")}
    assert _actions(app).count("agent.removed") == 1


# --- which agent acted for which client ----------------------------------------------------------


def _rows(page: str) -> list[str]:
    table = page[page.index('data-testid="activity"') : page.index("</table>")]
    return re.findall(r'<tr data-testid="entry-\d+">(.*?)</tr>', table, re.S)


def test_r71_the_activity_shows_which_agent_entered_which_client_and_no_other_companys(
    app, world, admin
):
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a, "Plan change for Alpha")
    for kind, org in (("agency_agent", world.org_a), ("other_sales_agent", world.org_b)):
        enter_client(signed_in_client(app, world.emails[kind]), org, f"Not ours: {kind}")

    page = _text(admin.get("/partner/activity"))
    found = _rows(page)

    assert len(found) == 1
    # Nor are another company's agents or clients offered as filters.
    assert "Beta K.K." not in page and world.emails["agency_agent"] not in page
    (row,) = found
    assert (
        world.emails["sales_agent"] in row
        and "Alpha K.K." in row
        and "Plan change for Alpha" in row
    )
    assert "still inside" in row

    _leave(agent)
    (row,) = _rows(_text(admin.get("/partner/activity")))
    assert "left the client's portal" in row


def _entries(app, world, user_id: int, organisation_id: int, count: int, start) -> None:
    """`count` ended entries of an agent into a client, one a minute from `start` (made in
    the database: the paging needs more entries than a test should click through)."""
    with app.app_context():
        session = UserSession(token=f"s-{user_id}-{organisation_id}-{count}", user_id=user_id)
        db.session.add(session)
        db.session.flush()
        for n in range(count):
            at = start + timedelta(minutes=n)
            db.session.add(
                AccountEntry(
                    kind=EntryKind.AGENT,
                    user_id=user_id,
                    organisation_id=organisation_id,
                    user_session_id=session.id,
                    reason=f"Call {n}",
                    started_at=at,
                    ended_at=at + timedelta(seconds=30),
                    ended_reason="stopped",
                )
            )
        db.session.commit()


def test_the_activity_filters_by_agent_and_client_and_pages(app, world, admin):
    with app.app_context():
        db.session.add(
            PartnerAssignment(partner_id=world.ids["sales_partner"], organisation_id=world.org_b)
        )
        db.session.commit()
    sales, boss = world.ids["sales_agent"], world.ids["partner_admin"]
    early = DEFAULT_NOW - timedelta(days=10)
    _entries(app, world, sales, world.org_a, 55, early)
    _entries(app, world, boss, world.org_b, 3, early + timedelta(days=1))
    _entries(app, world, world.ids["other_sales_agent"], world.org_b, 4, early)

    first = _text(admin.get("/partner/activity"))
    assert len(_rows(first)) == 50
    assert "Beta K.K." in _rows(first)[0]  # newest first: the administrator's calls to B
    assert 'rel="next"' in first and "page 1 of 2" in first
    second = _text(admin.get("/partner/activity?page=2"))
    assert len(_rows(second)) == 8 and 'rel="prev"' in second

    by_agent = _text(admin.get(f"/partner/activity?agent={boss}"))
    assert len(_rows(by_agent)) == 3
    by_client = _text(admin.get(f"/partner/activity?client={world.org_b}"))
    assert len(_rows(by_client)) == 3  # not the other company's four
    both = _text(admin.get(f"/partner/activity?agent={sales}&client={world.org_b}"))
    assert _rows(both) == [] and "No agent entered a client with these filters." in both
    page2 = _text(admin.get(f"/partner/activity?agent={sales}&page=2"))
    assert len(_rows(page2)) == 5
    assert f"agent={sales}" in page2.split('rel="prev"')[0].rsplit("href=", 1)[1]

    # Another company's agent is not a choice: refused next to the filter, nothing shown.
    response = admin.get(f"/partner/activity?agent={world.ids['other_sales_agent']}")
    assert response.status_code == 422
    assert _error(_text(response), "agent") == "Choose an agent from the list."
    assert _rows(_text(response)) == []


@pytest.mark.parametrize(
    "value",
    ["\x00", "1\x00", "9" * 10_000, "-1", "0", "99999999999999999999", "２", "1e3", " ", "%"],
)
def test_hostile_query_values_are_answered_calmly(app, world, admin, value):
    for name in ("agent", "client", "page"):
        response = admin.get("/partner/activity", query_string={name: value})
        assert response.status_code in (200, 422), (name, response.status_code)
    response = admin.get("/partner/activity", query_string={"agent": value, "client": value})
    assert response.status_code in (200, 422)
    removal = admin.post(
        f"/partner/people/{world.ids['sales_agent']}/remove", data={"confirmed": value}
    )
    # Anything but "yes" or "edit" asks first; a forged over-long value is a bad request.
    assert removal.status_code in (200, 400)
    assert _user(app, world.emails["sales_agent"]).active
    for field in ("name", "email", "role", "locale"):
        data = {"email": f"hostile-{field}@sales.example", field: value}
        response = _invite(admin, **data)
        assert response.status_code in (302, 422), (field, response.status_code)
        if "\x00" in value or len(value) > 100:
            assert response.status_code == 422, field


# --- staff invite a partner's people --------------------------------------------------------------


def test_r71_staff_invite_a_partner_administrator_from_the_partner_page(app, world):
    staff = signed_in_client(app, world.emails["support"])
    partner = world.ids["other_sales_partner"]
    page = _text(staff.get(f"/staff/partners/{partner}"))
    assert f'action="/staff/partners/{partner}/agents"' in page

    response = staff.post(
        f"/staff/partners/{partner}/agents",
        data={
            "name": "First Admin",
            "email": "first.admin@othersales.example",
            "role": "administrator",
            "locale": "en",
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/partners/{partner}"
    invited = _user(app, "first.admin@othersales.example")
    assert invited.kind == UserKind.AGENT and invited.partner_id == partner
    assert invited.partner_role == PartnerRole.ADMINISTRATOR
    (email,) = rows(app, OutboxEmail, kind="partner_agent_invitation")
    assert "Other Sales Co." in email.subject and email.locale == "en"
    assert "as an administrator of Other Sales Co." in email.body
    (event,) = [e for e in rows(app, AuditEvent) if e.action == "agent.invited"]
    assert event.user_id == world.ids["support"]
    assert "first.admin@othersales.example" in _text(staff.get(f"/staff/partners/{partner}"))
    # The new administrator manages his own company's people, not A's sales agent company's.
    with app.app_context():
        db.session.get(User, invited.id).password_changed_at = clock.now()
        db.session.commit()
    boss = signed_in_client(app, "first.admin@othersales.example")
    assert world.emails["other_sales_agent"] in _text(boss.get("/partner/people"))
    assert boss.post(f"/partner/people/{world.ids['sales_agent']}/remove").status_code == 404


def test_staff_invitation_refuses_an_address_in_use(app, world):
    staff = signed_in_client(app, world.emails["support"])
    before = snapshot(app, skip=("user_sessions",))
    response = staff.post(
        f"/staff/partners/{world.ids['sales_partner']}/agents",
        data={"name": "X", "email": world.emails["admin"], "role": "agent", "locale": "en"},
    )
    assert response.status_code == 422
    assert _error(_text(response), "email") == NEUTRAL
    assert snapshot(app, skip=("user_sessions",)) == before


@pytest.mark.parametrize("kind", ["billing", "production"])
def test_billing_and_production_staff_only_look(app, world, kind):
    staff = signed_in_client(app, world.emails[kind])
    partner = world.ids["sales_partner"]
    page = _text(staff.get(f"/staff/partners/{partner}"))
    assert "/agents" not in page
    before = snapshot(app, skip=("user_sessions", "audit_events"))
    response = staff.post(
        f"/staff/partners/{partner}/agents",
        data={"name": "X", "email": "x@sales.example", "role": "agent", "locale": "en"},
    )
    assert response.status_code == 403
    assert snapshot(app, skip=("user_sessions", "audit_events")) == before


def test_a_staff_invitation_for_an_unknown_partner_answers_404(app, world):
    staff = signed_in_client(app, world.emails["support"])
    response = staff.post(
        "/staff/partners/987654/agents",
        data={"name": "X", "email": "x@sales.example", "role": "agent", "locale": "en"},
    )
    assert response.status_code == 404


def test_withdrawing_a_client_still_lets_the_partners_agents_out(app, world):
    """partners.withdraw ends the agents' entries with the same helper as a removal."""
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a)
    staff = signed_in_client(app, world.emails["support"])
    target = f"/staff/partners/{world.ids['sales_partner']}/clients/{world.org_a}/withdraw"
    assert staff.post(target, data=CONFIRMED).status_code == 302
    (entry,) = rows(app, AccountEntry, user_id=world.ids["sales_agent"])
    assert entry.ended_reason == "partner_withdrawn"
    # The agent stays signed in: only the client went.
    assert agent.get("/partner/clients").status_code == 200
