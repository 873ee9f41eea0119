"""Accounts (R-63): password reset by a single-use e-mailed link with an expiry; the users of
an organisation, invited and removed by its administrators (R-70) and by nobody else (R-71,
R-72); reports of suspected misuse, which end every session of the account at once and
alert the provider's staff."""

from __future__ import annotations

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountToken,
    ApiToken,
    AuditEvent,
    CustomerRole,
    MisuseReport,
    OutboxEmail,
    User,
    UserKind,
    UserSession,
)
from portal.permissions import Actor
from portal.services import api_tokens
from tests.conftest import DEFAULT_NOW
from tests.factories import (
    PASSWORD,
    add_user,
    become,
    build_world,
    rows,
    signed_in_client,
    snapshot,
)

NEW_PASSWORD = "a fresh and long passphrase"
CONFIRMED = {"confirmed": "yes"}


@pytest.fixture
def world(app):
    return build_world(app)


def _browser(app):
    """A signed-out browser that asks for English pages."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _error(page: str, field: str) -> str | None:
    """The error message shown next to a form field (see _macros.html)."""
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return unescape(match.group(1)) if match else None


def _emails(app, kind: str) -> list[OutboxEmail]:
    return rows(app, OutboxEmail, kind=kind)


def _link(email: OutboxEmail, route: str) -> str:
    """The path of the link in an e-mail (the test client needs no host)."""
    match = re.search(rf"https?://\S+/{route}/\S+", email.body)
    assert match, email.body
    return urlsplit(match.group(0)).path


def _signed_in(client) -> bool:
    return client.get("/contracts").status_code == 200


def _can_sign_in(app, email: str, password: str) -> bool:
    response = app.test_client().post("/login", data={"email": email, "password": password})
    return response.status_code == 302


def _user(app, email: str) -> User:
    (user,) = rows(app, User, email=email)
    return user


def _actions(app) -> list[str]:
    return [e.action for e in rows(app, AuditEvent)]


def _request_reset(app, email: str):
    return app.test_client().post("/password-reset", data={"email": email})


def _reset_link(app, email: str) -> str:
    assert _request_reset(app, email).status_code == 302
    return _link(_emails(app, "password_reset")[-1], "password-reset")


def _new_password(password: str = NEW_PASSWORD, confirm: str | None = None) -> dict[str, str]:
    return {"new_password": password, "confirm": password if confirm is None else confirm}


# --- password reset (R-63) ------------------------------------------------------------------


def test_r63_login_page_offers_a_password_reset(app, world):
    client = _browser(app)
    page = _text(client.get("/login"))
    assert 'href="/password-reset"' in page
    assert "Forgot your password?" in page
    assert client.get("/password-reset").status_code == 200


def test_r63_password_reset_by_an_emailed_link_that_works_once(app, world):
    """The link in the e-mail sets a new password once, ends every session of the account,
    and only the token's hash is stored."""
    elsewhere = signed_in_client(app, world.emails["admin"])
    browser = _browser(app)

    response = browser.post("/password-reset", data={"email": "Admin@Alpha.example"})

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    (email,) = _emails(app, "password_reset")
    assert email.to_address == world.emails["admin"]
    assert email.locale == "en"  # the user's language
    assert email.sensitive  # the body is blanked once sent
    assert not email.is_notice
    assert email.body.count("http://127.0.0.1:5000/password-reset/") == 1
    link = _link(email, "password-reset")
    token = link.rsplit("/", 1)[1]
    (stored,) = rows(app, AccountToken)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.expires_at == DEFAULT_NOW + timedelta(hours=1)
    # Only the hash is kept (the e-mail itself is blanked once sent).
    assert token not in str(snapshot(app, skip=("outbox_emails",)))

    page = browser.get(link)
    assert page.status_code == 200
    assert world.emails["admin"] in _text(page)
    done = browser.post(link, data=_new_password())

    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == "/login"
    assert "Sign in" in _text(browser.get("/login"))
    assert not _signed_in(elsewhere)  # every session of the account ended
    assert not _can_sign_in(app, world.emails["admin"], PASSWORD)
    assert _can_sign_in(app, world.emails["admin"], NEW_PASSWORD)
    assert _user(app, world.emails["admin"]).password_hash.startswith("$argon2id$")
    assert rows(app, AccountToken)[0].used_at == DEFAULT_NOW
    assert {"password_reset.requested", "password_reset.completed"} <= set(_actions(app))

    # The second use is refused with a page that offers a new link; nothing changes.
    before = snapshot(app, skip=("audit_events",))
    again = browser.post(link, data=_new_password("yet another long passphrase"))
    assert again.status_code == 410
    assert 'href="/password-reset"' in _text(again)
    assert browser.get(link).status_code == 410
    assert snapshot(app, skip=("audit_events",)) == before


def test_r63_unknown_or_inactive_address_gets_the_same_answer_and_no_email(app, world):
    """No account enumeration: the same redirect and message for any address, and nothing
    is written for an address without an active account."""
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.email == world.emails["member"]).values(active=False)
        )
        db.session.commit()
    answers = []
    for email in (world.emails["admin"], "nobody@alpha.example", world.emails["member"]):
        browser = _browser(app)
        response = browser.post("/password-reset", data={"email": email})
        answers.append((response.status_code, response.headers["Location"]))
        message = re.search(r'class="flash[^"]*"[^>]*>([^<]*)<', _text(browser.get("/login")))
        answers.append(message.group(1))
    assert answers[0:2] == answers[2:4] == answers[4:6]
    assert [e.to_address for e in _emails(app, "password_reset")] == [world.emails["admin"]]
    assert [t.user_id for t in rows(app, AccountToken)] == [world.ids["admin"]]


def test_r63_reset_link_expires_after_one_hour(app, world):
    link = _reset_link(app, world.emails["admin"])
    browser = _browser(app)
    clock.set(DEFAULT_NOW + timedelta(minutes=59))
    assert browser.get(link).status_code == 200

    clock.set(DEFAULT_NOW + timedelta(hours=1))
    expired = browser.get(link)
    assert expired.status_code == 410
    assert "expired" in _text(expired)
    assert browser.post(link, data=_new_password()).status_code == 410
    assert _can_sign_in(app, world.emails["admin"], PASSWORD)


def test_r63_a_new_reset_request_makes_earlier_links_unusable(app, world):
    first = _reset_link(app, world.emails["admin"])
    second = _reset_link(app, world.emails["admin"])
    browser = _browser(app)
    assert browser.get(first).status_code == 410
    assert browser.post(first, data=_new_password()).status_code == 410
    assert browser.post(second, data=_new_password()).status_code == 302
    assert _can_sign_in(app, world.emails["admin"], NEW_PASSWORD)


def test_r63_unknown_link_answers_404(app, world):
    client = _browser(app)
    response = client.get("/password-reset/not-a-token-we-sent")
    assert response.status_code == 404
    assert 'href="/password-reset"' in _text(response)
    assert client.post("/invitation/not-a-token-we-sent", data=_new_password()).status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (_new_password("short"), "new_password", "Use at least 12 characters."),
        (_new_password(confirm="something else entirely"), "confirm", "The two new passwords"),
        (_new_password("admin@alpha.example"), "new_password", "must not be your e-mail"),
    ],
)
def test_r63_a_refused_new_password_changes_nothing_and_keeps_the_link(
    app, world, data, field, message
):
    link = _reset_link(app, world.emails["admin"])
    browser = _browser(app)
    before = snapshot(app)
    response = browser.post(link, data=data)
    assert response.status_code == 422
    assert message in (_error(_text(response), field) or "")
    assert snapshot(app) == before
    assert browser.post(link, data=_new_password()).status_code == 302


def test_r63_a_signed_in_browser_does_not_use_someone_elses_link(app, world):
    link = _reset_link(app, world.emails["admin"])
    member = signed_in_client(app, world.emails["member"])
    before = snapshot(app, skip=("audit_events", "user_sessions"))
    response = member.post(link, data=_new_password())
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/"
    assert snapshot(app, skip=("audit_events", "user_sessions")) == before


def test_r63_one_link_submitted_twice_at_once_sets_the_password_once(app, world):
    """The database decides (a conditional UPDATE): one submission wins, the others get 410."""
    link = _reset_link(app, world.emails["admin"])
    browsers = [_browser(app) for _ in range(4)]
    start = threading.Barrier(len(browsers))

    def submit(indexed):
        n, browser = indexed
        start.wait()
        return browser.post(link, data=_new_password(f"{NEW_PASSWORD} {n}")).status_code

    with ThreadPoolExecutor(len(browsers)) as pool:
        statuses = sorted(pool.map(submit, enumerate(browsers)))
    assert statuses == [302, 410, 410, 410]
    assert _actions(app).count("password_reset.completed") == 1
    winners = [
        n for n in range(4) if _can_sign_in(app, world.emails["admin"], f"{NEW_PASSWORD} {n}")
    ]
    assert len(winners) == 1


def test_r63_reset_requests_are_rate_limited_per_address(make_app):
    app = make_app(RATELIMIT_ENABLED=True, PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT="2 per hour")
    world = build_world(app)
    for email in ("admin@alpha.example", "ADMIN@alpha.example"):
        assert _request_reset(app, email).status_code == 302
    assert _request_reset(app, world.emails["admin"]).status_code == 429
    assert len(_emails(app, "password_reset")) == 2
    # Another address is still served.
    assert _request_reset(app, world.emails["member"]).status_code == 302


# --- users of an organisation (R-70) --------------------------------------------------------


@pytest.fixture
def admin(app, world):
    return signed_in_client(app, world.emails["admin"])


def _invite(client, email: str = "new@alpha.example", **overrides: str):
    data = {"name": "New Colleague", "email": email, "role": "member", "locale": "ja"}
    return client.post("/organisation/users/invite", data={**data, **overrides})


def _user_row(page: str, user_id: int) -> str:
    start = page.index(f'data-testid="user-{user_id}"')
    return page[start : page.index("</tr>", start)]


def test_r70_administrator_invites_a_user_who_sets_a_password_and_signs_in(app, world, admin):
    response = _invite(admin)

    assert response.status_code == 302
    assert response.headers["Location"] == "/organisation/users"
    invited = _user(app, "new@alpha.example")
    assert invited.kind == UserKind.CUSTOMER
    assert invited.organisation_id == world.org_a
    assert invited.customer_role == CustomerRole.MEMBER
    assert invited.active and invited.locale == "ja"
    assert not invited.password_hash.startswith("$argon2")  # nobody can sign in yet
    (email,) = _emails(app, "invitation")
    assert email.to_address == "new@alpha.example"
    assert email.locale == "ja" and email.sensitive and not email.is_notice
    (token,) = rows(app, AccountToken, user_id=invited.id)
    assert token.purpose == "invitation"
    assert token.expires_at == DEFAULT_NOW + timedelta(days=7)
    assert token.created_by_id == world.ids["admin"]
    listing = _text(admin.get("/organisation/users"))
    assert "Invited, link valid until" in _user_row(listing, invited.id)

    link = _link(email, "invitation")
    browser = _browser(app)
    page = browser.get(link)
    assert page.status_code == 200
    assert "Alpha K.K." in _text(page)
    done = browser.post(link, data=_new_password())
    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == "/login"
    assert _can_sign_in(app, "new@alpha.example", NEW_PASSWORD)
    assert browser.post(link, data=_new_password("another long passphrase")).status_code == 410
    assert "Active" in _user_row(_text(admin.get("/organisation/users")), invited.id)
    assert {"user.invited", "invitation.accepted"} <= set(_actions(app))


def test_r70_an_expired_invitation_is_refused_and_can_be_sent_again(app, world, admin):
    _invite(admin)
    invited = _user(app, "new@alpha.example")
    old_link = _link(_emails(app, "invitation")[0], "invitation")
    clock.set(DEFAULT_NOW + timedelta(days=7))
    browser = _browser(app)
    assert browser.get(old_link).status_code == 410
    admin = signed_in_client(app, world.emails["admin"])  # the earlier session went idle
    assert "Invitation expired" in _user_row(_text(admin.get("/organisation/users")), invited.id)

    response = admin.post(f"/organisation/users/{invited.id}/invitation")

    assert response.status_code == 302
    new_link = _link(_emails(app, "invitation")[-1], "invitation")
    assert new_link != old_link
    assert browser.get(old_link).status_code == 410
    assert browser.post(new_link, data=_new_password()).status_code == 302
    # Accepted: nothing left to send again.
    assert admin.post(f"/organisation/users/{invited.id}/invitation").status_code == 409


def test_r70_sending_an_invitation_again_makes_the_earlier_link_unusable(app, world, admin):
    _invite(admin)
    invited = _user(app, "new@alpha.example")
    old_link = _link(_emails(app, "invitation")[0], "invitation")
    assert admin.post(f"/organisation/users/{invited.id}/invitation").status_code == 302
    browser = _browser(app)
    assert browser.post(old_link, data=_new_password()).status_code == 410
    new_link = _link(_emails(app, "invitation")[-1], "invitation")
    assert browser.post(new_link, data=_new_password()).status_code == 302


# Issue 13: only an address of the administrator's own organisation is said to be a user;
# another organisation's, an agent's or the provider's get one answer that reveals no owner.
@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("member@alpha.example", "A user with this e-mail address already exists."),
        ("ADMIN@beta.example", "This address cannot be used for a new user."),
        ("agent@sales.example", "This address cannot be used for a new user."),
        ("support@provider.example", "This address cannot be used for a new user."),
    ],
)
def test_r70_a_duplicate_address_is_refused_next_to_the_field(app, world, admin, email, message):
    before = snapshot(app, skip=("user_sessions",))
    response = _invite(admin, email, name="Typed Name")
    assert response.status_code == 422
    page = _text(response)
    assert _error(page, "email").startswith(message)
    assert 'value="Typed Name"' in page  # what was typed is kept
    assert snapshot(app, skip=("user_sessions",)) == before


def test_r70_invitation_form_errors_are_shown_next_to_the_field(app, world, admin):
    before = snapshot(app, skip=("user_sessions",))
    response = _invite(admin, "not an address")
    assert response.status_code == 422
    assert _error(_text(response), "email") == "Enter a valid e-mail address."
    assert _invite(admin, name="").status_code == 422
    assert snapshot(app, skip=("user_sessions",)) == before


@pytest.mark.parametrize("actor", ["member", "sales_agent", "agency_agent", "support_viewing"])
def test_r70_r71_r72_only_administrators_manage_users(app, world, actor):
    """Members and agents (R-71) manage no users; staff viewing as the customer see the list
    but never change a login (R-72). Nothing changes."""
    client = app.test_client()
    become(app, client, world, actor)
    target = world.ids["member"]
    before = snapshot(app, skip=("audit_events",))

    assert _invite(client).status_code == 403
    assert client.get("/organisation/users/invite").status_code == 403
    assert client.post(f"/organisation/users/{target}/removal").status_code == 403
    assert client.post(f"/organisation/users/{target}/removal", data=CONFIRMED).status_code == 403
    assert client.post(f"/organisation/users/{target}/invitation").status_code == 403

    listing = client.get("/organisation/users")
    assert listing.status_code == (200 if actor == "support_viewing" else 403)
    if actor == "support_viewing":
        page = _text(listing)
        assert world.emails["member"] in page
        assert "/removal" not in page and "/organisation/users/invite" not in page
    assert snapshot(app, skip=("audit_events",)) == before


def test_r70_another_organisations_user_answers_404(app, world, admin):
    before = snapshot(app, skip=("user_sessions",))
    other = world.ids["other_admin"]
    assert admin.post(f"/organisation/users/{other}/removal").status_code == 404
    assert admin.post(f"/organisation/users/{other}/removal", data=CONFIRMED).status_code == 404
    assert admin.post(f"/organisation/users/{other}/invitation").status_code == 404
    assert world.emails["other_admin"] not in _text(admin.get("/organisation/users"))
    assert snapshot(app, skip=("user_sessions",)) == before


def _confirmation(page: str) -> str:
    """The summary of a confirmation page (templates/_confirm.html), as text."""
    match = re.search(r'data-testid="confirm-summary">(.*?)</ul>', page, re.S)
    assert match, "no confirmation page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_removing_a_user_asks_first_and_going_back_changes_nothing(app, world, admin):
    """An irreversible action asks once more: the page says what will happen and changes
    nothing; "go back" returns to the list (a GET), still without changing anything."""
    removal = f"/organisation/users/{world.ids['member']}/removal"
    before = snapshot(app, skip=("user_sessions",))

    asked = admin.post(removal)

    assert asked.status_code == 200
    page = _text(asked)
    summary = _confirmation(page)
    assert "Remove member (member@alpha.example, Member)." in summary  # the user named "member"
    assert "signed out everywhere" in summary and "cannot be undone" in summary
    assert f'action="{removal}"' in page
    assert 'name="confirmed" value="yes"' in page and 'name="confirmed" value="edit"' in page
    assert snapshot(app, skip=("user_sessions",)) == before

    back = admin.post(removal, data={"confirmed": "edit"})
    assert back.status_code == 302 and back.headers["Location"] == "/organisation/users"
    assert snapshot(app, skip=("user_sessions",)) == before


def test_r70_a_removed_user_is_signed_out_at_once_and_cannot_sign_in(app, world, admin):
    member = signed_in_client(app, world.emails["member"])
    assert _signed_in(member)

    response = admin.post(f"/organisation/users/{world.ids['member']}/removal", data=CONFIRMED)

    assert response.status_code == 302
    assert response.headers["Location"] == "/organisation/users"  # post/redirect/get
    assert not _signed_in(member)  # its next request
    assert not _can_sign_in(app, world.emails["member"], PASSWORD)
    sessions = rows(app, UserSession, user_id=world.ids["member"])
    assert sessions and all(s.ended_reason == "user_removed" for s in sessions)
    assert not _user(app, world.emails["member"]).active
    assert "Removed" in _user_row(_text(admin.get("/organisation/users")), world.ids["member"])
    assert "user.removed" in _actions(app)
    # A removed user asks for a reset link in vain.
    assert _request_reset(app, world.emails["member"]).status_code == 302
    assert _emails(app, "password_reset") == []


def test_r70_a_removed_invitee_cannot_accept(app, world, admin):
    _invite(admin)
    invited = _user(app, "new@alpha.example")
    link = _link(_emails(app, "invitation")[0], "invitation")
    removal = f"/organisation/users/{invited.id}/removal"
    assert admin.post(removal, data=CONFIRMED).status_code == 302
    assert _browser(app).post(link, data=_new_password()).status_code == 410


def test_r70_an_administrator_cannot_remove_themselves(app, world, admin):
    page = _text(admin.get("/organisation/users"))
    assert f"/organisation/users/{world.ids['admin']}/removal" not in page
    before = snapshot(app, skip=("user_sessions",))
    # Refused before it is asked, and when sent confirmed.
    for data in ({}, CONFIRMED):
        response = admin.post(f"/organisation/users/{world.ids['admin']}/removal", data=data)
        assert response.status_code == 409
        assert "cannot remove yourself" in _text(response)
    assert snapshot(app, skip=("user_sessions",)) == before


def test_r70_two_administrators_removing_each_other_at_once_leave_one(app, world):
    """The organisation keeps an administrator: the database serialises the two removals
    (the organisation's row lock; SQLite's write lock), and the second finds its own
    administrator gone."""
    with app.app_context():
        second = add_user(
            "second@alpha.example",
            kind=UserKind.CUSTOMER,
            organisation_id=world.org_a,
            customer_role=CustomerRole.ADMINISTRATOR,
        )
        db.session.commit()
        second_id = second.id
    first = signed_in_client(app, world.emails["admin"])
    other = signed_in_client(app, "second@alpha.example")
    moves = [(first, second_id), (other, world.ids["admin"])]
    start = threading.Barrier(len(moves))

    def remove(move):
        client, target = move
        start.wait()
        response = client.post(f"/organisation/users/{target}/removal", data=CONFIRMED)
        return response.status_code, urlsplit(response.headers.get("Location", "")).path

    with ThreadPoolExecutor(len(moves)) as pool:
        answers = sorted(pool.map(remove, moves))

    with app.app_context():
        admins = db.session.scalars(
            sa.select(User.id).where(
                User.organisation_id == world.org_a,
                User.customer_role == CustomerRole.ADMINISTRATOR,
                User.active.is_(True),
            )
        ).all()
    assert len(admins) == 1
    assert (302, "/organisation/users") in answers
    # The other was refused, or found itself signed out before it got that far.
    assert len(set(answers) - {(302, "/organisation/users"), (403, ""), (302, "/login")}) == 0
    assert _actions(app).count("user.removed") == 1


# --- suspected misuse (R-63) ------------------------------------------------------------------


def test_r63_misuse_report_ends_every_session_and_alerts_staff_at_once(app, world, admin):
    elsewhere = signed_in_client(app, world.emails["admin"])
    assert admin.get("/account/misuse").status_code == 200

    response = admin.post(
        "/account/misuse",
        data={"details": "A sign-in from an address I do not know."},
        headers={"User-Agent": "Test browser"},
    )

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    landing = _text(admin.get("/login"))
    assert "password" in landing and 'href="/password-reset"' in landing
    assert not _signed_in(admin) and not _signed_in(elsewhere)  # this session too
    (report,) = rows(app, MisuseReport)
    assert report.user_id == world.ids["admin"]
    assert report.organisation_id == world.org_a
    assert report.details == "A sign-in from an address I do not know."
    assert report.sessions_ended == 2
    assert report.user_agent == "Test browser"
    sessions = rows(app, UserSession, user_id=world.ids["admin"])
    assert all(s.ended_reason == "misuse_reported" for s in sessions)
    # The provider's support (and administrator) staff are alerted; billing staff are not.
    alerts = _emails(app, "misuse_alert")
    assert [e.to_address for e in alerts] == [world.emails["support"]]
    assert world.emails["admin"] in alerts[0].body
    assert "A sign-in from an address I do not know." in alerts[0].body
    (confirmation,) = _emails(app, "misuse_reported")
    assert confirmation.to_address == world.emails["admin"]
    assert "/password-reset" in confirmation.body
    assert "misuse.reported" in _actions(app)


def test_r63_misuse_alert_goes_to_the_configured_address(make_app):
    app = make_app(MAIL_STAFF_ALERTS_TO="security@provider.example")
    world = build_world(app)
    member = signed_in_client(app, world.emails["member"])
    assert member.post("/account/misuse", data={"details": ""}).status_code == 302
    assert [e.to_address for e in _emails(app, "misuse_alert")] == ["security@provider.example"]
    assert rows(app, MisuseReport)[0].details == ""


def test_r63_misuse_report_too_long_is_refused_and_nothing_changes(app, world, admin):
    before = snapshot(app)
    response = admin.post("/account/misuse", data={"details": "x" * 2001})
    assert response.status_code == 422
    assert _error(_text(response), "details") == "Use at most 2000 characters."
    assert snapshot(app) == before
    assert _signed_in(admin)


def test_r63_an_agent_reports_misuse_of_its_own_account(app, world):
    """Inside a client's portal the report is the agent's own: its sessions and its entry
    into the client end."""
    agent = app.test_client()
    become(app, agent, world, "sales_agent")
    assert agent.post("/account/misuse", data={"details": "odd"}).status_code == 302
    (report,) = rows(app, MisuseReport)
    assert report.user_id == world.ids["sales_agent"]
    assert report.organisation_id is None
    assert not _signed_in(agent)
    assert "entry_ended" in _actions(app)


def test_r72_staff_viewing_as_the_customer_cannot_report_misuse(app, world):
    staff = app.test_client()
    become(app, staff, world, "support_viewing")
    before = snapshot(app, skip=("audit_events",))
    assert staff.get("/account/misuse").status_code == 403
    assert staff.post("/account/misuse", data={"details": "x"}).status_code == 403
    assert snapshot(app, skip=("audit_events",)) == before
    assert 'href="/account/misuse"' not in _text(staff.get("/contracts"))


def _report(app, world, who: str, *, minutes: int) -> int:
    with app.app_context():
        report = MisuseReport(
            user_id=world.ids[who],
            organisation_id=world.org_a if who in ("admin", "member") else None,
            reported_at=DEFAULT_NOW + timedelta(minutes=minutes),
            details=f"report of {who}",
        )
        db.session.add(report)
        db.session.commit()
        return report.id


def _listed(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-testid="misuse-report-(\d+)"', page)]


def test_r63_staff_see_reports_and_support_staff_mark_them_handled(app, world):
    older = _report(app, world, "member", minutes=1)
    newer = _report(app, world, "admin", minutes=2)
    support = signed_in_client(app, world.emails["support"])
    billing = signed_in_client(app, world.emails["billing"])
    assert _listed(_text(billing.get("/staff/misuse-reports"))) == [newer, older]

    before = snapshot(app, skip=("audit_events",))
    refused = billing.post(f"/staff/misuse-reports/{newer}/handled", data={"note": "x"})
    assert refused.status_code == 403
    empty = support.post(f"/staff/misuse-reports/{newer}/handled", data={"note": " "})
    assert empty.status_code == 422
    assert _error(_text(empty), "note") == "Say what was done."
    assert snapshot(app, skip=("audit_events",)) == before

    # Handled once, for good: asked first; going back keeps the note as typed.
    url = f"/staff/misuse-reports/{newer}/handled"
    asked = support.post(url, data={"note": "Called the customer."})
    assert asked.status_code == 200
    summary = _confirmation(_text(asked))
    assert "admin@alpha.example" in summary and "What was done: Called the customer." in summary
    assert "cannot be changed afterwards" in summary
    back = support.post(url, data={"note": "Called the customer.", "confirmed": "edit"})
    assert back.status_code == 200
    assert "Called the customer.</textarea>" in _text(back)
    assert snapshot(app, skip=("audit_events",)) == before

    done = support.post(url, data={"note": "Called the customer.", "confirmed": "yes"})
    assert done.status_code == 302
    assert done.headers["Location"] == "/staff/misuse-reports"
    handled = rows(app, MisuseReport, id=newer)[0]
    assert handled.handled_by_id == world.ids["support"]
    assert handled.handling_note == "Called the customer."
    page = _text(support.get("/staff/misuse-reports"))
    assert _listed(page) == [older, newer]  # unhandled first
    assert "Called the customer." in page
    again = support.post(url, data={"note": "again", "confirmed": "yes"})
    assert again.status_code == 409
    assert support.post(url, data={"note": "again"}).status_code == 409  # not asked either
    assert rows(app, MisuseReport, id=newer)[0].handling_note == "Called the customer."
    assert "misuse.handled" in _actions(app)


def test_r63_customers_do_not_see_misuse_reports(app, world, admin):
    report = _report(app, world, "admin", minutes=1)
    assert admin.get("/staff/misuse-reports").status_code == 404
    assert (
        admin.post(f"/staff/misuse-reports/{report}/handled", data={"note": "x"}).status_code == 404
    )


def test_r70_navigation_shows_users_and_misuse_links_to_who_may(app, world, admin):
    page = _text(admin.get("/contracts"))
    assert 'href="/organisation/users"' in page and 'href="/account/misuse"' in page
    member = signed_in_client(app, world.emails["member"])
    page = _text(member.get("/contracts"))
    assert 'href="/organisation/users"' not in page and 'href="/account/misuse"' in page
    support = signed_in_client(app, world.emails["support"])
    assert 'href="/staff/misuse-reports"' in _text(support.get("/staff/organisations"))


def test_r63_misuse_report_also_stops_the_accounts_api_tokens(app, world, admin):
    """The API is the account's other way in: its bearer tokens stop with the sessions."""
    with app.app_context():
        user = db.session.get(User, world.ids["admin"])
        _token, plain = api_tokens.create(Actor(user), "integration", ip="127.0.0.1")
        db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    api = app.test_client()
    assert api.get("/api/v1/contracts", headers=headers).status_code == 200
    assert admin.post("/account/misuse", data={"details": ""}).status_code == 302
    assert api.get("/api/v1/contracts", headers=headers).status_code == 401


def test_r63_an_account_that_must_change_its_password_can_still_report_misuse(app, world):
    """Someone else may have set the password: reporting must not wait for a change."""
    with app.app_context():
        db.session.get(User, world.ids["member"]).must_change_password = True
        db.session.commit()
    member = signed_in_client(app, world.emails["member"])
    assert member.get("/contracts").headers["Location"].endswith("/account/password")
    assert member.get("/account/misuse").status_code == 200
    assert member.post("/account/misuse", data={"details": ""}).status_code == 302
    assert rows(app, MisuseReport)[0].user_id == world.ids["member"]


# --- API tokens: shown once after a redirect, revoked after a confirmation -------------------


def _api_works(app, plain: str) -> bool:
    response = app.test_client().get(
        "/api/v1/contracts", headers={"Authorization": f"Bearer {plain}"}
    )
    return response.status_code == 200


def test_a_new_api_token_is_shown_once_on_the_page_the_creation_redirects_to(app, world, admin):
    """Post/redirect/get: reloading the page never creates a second token, and the token is
    shown on the first GET only (and kept nowhere: not in the session, not in a cache)."""
    created = admin.post("/account/api-tokens", data={"name": "ERP"})

    assert created.status_code == 302
    assert created.headers["Location"] == "/account/api-tokens"
    shown = admin.get("/account/api-tokens")
    match = re.search(r'data-testid="token-value">(ptk_[^<]+)<', _text(shown))
    assert match, "the new token is shown"
    plain = match.group(1)
    assert shown.headers["Cache-Control"] == "no-store"
    assert _api_works(app, plain)
    with admin.session_transaction() as session:
        assert plain not in str(dict(session))

    again = _text(admin.get("/account/api-tokens"))  # a reload
    assert plain not in again and 'data-testid="token-value"' not in again
    assert plain[:12] in again
    (stored,) = rows(app, ApiToken)
    assert plain not in (stored.token_hash, stored.prefix)


def test_a_refused_token_name_is_shown_next_to_the_field_and_creates_nothing(app, world, admin):
    before = snapshot(app, skip=("user_sessions",))
    response = admin.post("/account/api-tokens", data={"name": " "})
    assert response.status_code == 422
    assert _error(_text(response), "name") == "Name the token, e.g. the system that uses it."
    assert snapshot(app, skip=("user_sessions",)) == before


def test_revoking_a_token_asks_first_and_then_it_never_works_again(app, world, admin):
    with app.app_context():
        user = db.session.get(User, world.ids["admin"])
        token, plain = api_tokens.create(Actor(user), "ERP", ip="127.0.0.1")
        db.session.commit()
        revoke = f"/account/api-tokens/{token.id}/revoke"
    before = snapshot(app, skip=("user_sessions", "api_tokens"))

    asked = admin.post(revoke)

    assert asked.status_code == 200
    summary = _confirmation(_text(asked))
    assert "Revoke the token “ERP” (starts with ptk_" in summary
    assert "never works again" in summary
    assert _api_works(app, plain)
    back = admin.post(revoke, data={"confirmed": "edit"})
    assert back.status_code == 302 and back.headers["Location"] == "/account/api-tokens"
    assert _api_works(app, plain)
    assert snapshot(app, skip=("user_sessions", "api_tokens")) == before

    done = admin.post(revoke, data=CONFIRMED)

    assert done.status_code == 302 and done.headers["Location"] == "/account/api-tokens"
    assert not _api_works(app, plain)
    listing = _text(admin.get("/account/api-tokens"))
    assert "The token was revoked; it no longer works." in listing and "Revoked" in listing
    # Sent again (a reload of the confirmation): nothing more to do, and nothing asked.
    again = admin.post(revoke, data=CONFIRMED)
    assert again.status_code == 302
    assert "The token was already revoked." in _text(admin.get("/account/api-tokens"))
    assert _actions(app).count("api_token.revoked") == 1


def test_twenty_token_creations_at_once_never_pass_the_cap(app, world):
    """Issue 13: twenty parallel creations passed the cap of 10 (11 and 15 were seen): they
    now take turns, so exactly 10 tokens are active and the other ten are refused."""
    clients = [signed_in_client(app, world.emails["admin"]) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        statuses = list(
            pool.map(
                lambda pair: (
                    pair[1].post("/account/api-tokens", data={"name": f"t{pair[0]}"}).status_code
                ),
                enumerate(clients),
            )
        )
    active = [t for t in rows(app, ApiToken) if t.revoked_at is None]
    assert len(active) == api_tokens.MAX_ACTIVE_TOKENS == 10
    assert sorted(statuses) == [302] * 10 + [422] * 10
