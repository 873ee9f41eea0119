"""Signing in and out, passwords and sessions (R-63: login IDs and passwords of named users)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import AuditEvent, OutboxEmail, User, UserSession
from tests.factories import (
    PASSWORD,
    application_form,
    build_world,
    login,
    rows,
    sign_in,
)

NEW_PASSWORD = "a much longer new passphrase"
COOKIE = "portal_session"


def _error(page: str, field: str) -> str | None:
    """The error message shown next to a form field (see _macros.html)."""
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return match.group(1) if match else None


def _user(app, email: str) -> User:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        db.session.expunge(user)
        return user


def _sessions(app, email: str) -> list[UserSession]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                sa.select(UserSession)
                .join(User)
                .where(User.email == email)
                .order_by(UserSession.id)
            )
        )
        db.session.expunge_all()
        return rows


def _signed_in(client) -> bool:
    response = client.get("/contracts")
    return response.status_code == 200


# --- signing in ---------------------------------------------------------------------------


def test_wrong_password_and_unknown_email_get_the_same_answer(app, client):
    """Nothing tells whether an address has an account; the typed e-mail stays in the field."""
    world = build_world(app)
    wrong_password = client.post(
        "/login", data={"email": world.emails["admin"], "password": "not the password"}
    )
    unknown = client.post(
        "/login", data={"email": "nobody@alpha.example", "password": "not the password"}
    )

    assert wrong_password.status_code == unknown.status_code == 422
    message = _error(wrong_password.get_data(as_text=True), "password")
    assert message
    assert _error(unknown.get_data(as_text=True), "password") == message
    assert f'value="{world.emails["admin"]}"' in wrong_password.get_data(as_text=True)
    assert 'value="nobody@alpha.example"' in unknown.get_data(as_text=True)
    assert "not the password" not in wrong_password.get_data(as_text=True)
    assert _sessions(app, world.emails["admin"]) == []


def test_a_deactivated_user_cannot_sign_in_and_is_signed_out(app):
    world = build_world(app)
    signed_in = app.test_client()
    sign_in(app, signed_in, world.emails["member"])
    with app.app_context():
        member = db.session.scalar(sa.select(User).where(User.email == world.emails["member"]))
        member.active = False
        db.session.commit()

    response = app.test_client().post(
        "/login", data={"email": world.emails["member"], "password": PASSWORD}
    )

    assert response.status_code == 422
    assert not _signed_in(signed_in)


def test_passwords_are_stored_as_argon2_hashes(app, client):
    world = build_world(app)
    login(client, world.emails["admin"])
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    with app.app_context():
        hashes = list(db.session.scalars(sa.select(User.password_hash)))
    assert hashes
    for password_hash in hashes:
        assert password_hash.startswith("$argon2id$")
        assert PASSWORD not in password_hash
        assert NEW_PASSWORD not in password_hash


def test_sign_in_is_rate_limited_per_account_and_address(make_app):
    """After 3 failures in a minute from one address the next attempt answers 429, even with
    the right password (another address is not limited: tests/web/test_auth_hardening.py)."""
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS="3 per minute")
    world = build_world(app)
    client = app.test_client()
    # The same account however the address is written.
    for email in ("admin@alpha.example", "ADMIN@alpha.example", "Admin@Alpha.Example"):
        response = client.post("/login", data={"email": email, "password": "guessing"})
        assert response.status_code == 422

    response = client.post("/login", data={"email": world.emails["admin"], "password": PASSWORD})

    assert response.status_code == 429
    assert _sessions(app, world.emails["admin"]) == []
    # The limit is per account: another user of the same address still gets in.
    other = client.post("/login", data={"email": world.emails["member"], "password": PASSWORD})
    assert other.status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "/\t/evil.example",
    ],
)
def test_no_open_redirect_after_sign_in(app, client, target):
    world = build_world(app)
    response = client.post(
        "/login", data={"email": world.emails["admin"], "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_in_returns_to_the_local_page_that_asked_for_it(app, client):
    world = build_world(app)
    asked = client.get(f"/contracts/{world.contract_a}")
    assert asked.status_code == 302
    login_page = client.get(asked.headers["Location"]).get_data(as_text=True)
    login_form = re.search(r'<form method="post" action="/login".*?</form>', login_page, re.S)
    next_value = re.search(r'name="next" type="hidden" value="([^"]*)"', login_form[0]).group(1)
    assert next_value == f"/contracts/{world.contract_a}"

    response = client.post(
        "/login", data={"email": world.emails["admin"], "password": PASSWORD, "next": next_value}
    )

    assert response.headers["Location"] == f"/contracts/{world.contract_a}"
    assert client.get(response.headers["Location"]).status_code == 200


def test_the_session_cookie_changes_at_sign_in(app, client):
    """No session fixation: a cookie planted before sign-in never becomes a signed-in one."""
    world = build_world(app)
    client.get("/login")
    planted = client.get_cookie(COOKIE)
    assert planted is not None

    login(client, world.emails["admin"])

    assert client.get_cookie(COOKIE).value != planted.value
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, planted.value)
    assert not _signed_in(attacker)
    assert _signed_in(client)


# --- signing out --------------------------------------------------------------------------


def test_sign_out_ends_every_session_of_the_user_on_the_server(app, client):
    world = build_world(app)
    login(client, world.emails["admin"])
    laptop = app.test_client()
    sign_in(app, laptop, world.emails["admin"])
    colleague = app.test_client()
    sign_in(app, colleague, world.emails["member"])
    old_cookie = client.get_cookie(COOKIE).value
    assert _signed_in(laptop)

    response = client.post("/logout")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert not _signed_in(client)
    assert not _signed_in(laptop)
    replay = app.test_client()
    replay.set_cookie(COOKIE, old_cookie)
    assert not _signed_in(replay)
    assert {s.ended_reason for s in _sessions(app, world.emails["admin"])} == {"signed_out"}
    assert _signed_in(colleague)  # another user's sessions are left alone


# --- changing the password ----------------------------------------------------------------


def _change_password(client, current: str, new: str, confirm: str | None = None):
    return client.post(
        "/account/password",
        data={"current_password": current, "new_password": new, "confirm": confirm or new},
    )


def test_wrong_current_password_is_refused_next_to_the_field(app, client):
    world = build_world(app)
    login(client, world.emails["admin"])
    before = _user(app, world.emails["admin"]).password_hash

    response = _change_password(client, "not the password", NEW_PASSWORD)

    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "current_password")
    assert _user(app, world.emails["admin"]).password_hash == before
    assert _signed_in(client)


@pytest.mark.parametrize(
    ("new", "confirm", "field"),
    [
        ("short pass", "short pass", "new_password"),  # under 12 characters
        ("admin@alpha.example", "admin@alpha.example", "new_password"),  # the e-mail address
        (NEW_PASSWORD, NEW_PASSWORD + "!", "confirm"),
    ],
)
def test_weak_or_mistyped_new_password_is_refused(app, client, new, confirm, field):
    world = build_world(app)
    sign_in(app, client, world.emails["admin"])
    before = _user(app, world.emails["admin"]).password_hash

    response = _change_password(client, PASSWORD, new, confirm)

    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), field)
    assert _user(app, world.emails["admin"]).password_hash == before


def test_password_change_ends_the_other_sessions_and_keeps_this_one(app, client):
    world = build_world(app)
    login(client, world.emails["admin"])
    phone = app.test_client()
    sign_in(app, phone, world.emails["admin"])

    response = _change_password(client, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(phone)
    assert (
        app.test_client()
        .post("/login", data={"email": world.emails["admin"], "password": PASSWORD})
        .status_code
        == 422
    )
    login(app.test_client(), world.emails["admin"], NEW_PASSWORD)
    with app.app_context():
        assert db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "password_changed")
        ).details == {"other_sessions_ended": 1}


def test_onboarded_administrator_chooses_a_password_from_the_invitation_first(app):
    """R-63: the first administrator's password is never known to the provider: they choose
    it from the e-mailed invitation, then sign in with it."""
    world = build_world(app)
    staff = app.test_client()
    sign_in(app, staff, world.emails["support"])
    onboarded = staff.post(
        "/staff/organisations/new",
        data={**application_form(world.ids["plan_small"]), "confirmed": "yes"},
    )
    assert onboarded.status_code == 302
    page = staff.get(onboarded.headers["Location"]).get_data(as_text=True)
    assert "An invitation was e-mailed to admin@gamma.example" in page
    assert "initial-password" not in page
    (invitation,) = [e for e in rows(app, OutboxEmail) if e.kind == "invitation"]
    link = re.search(r"(/invitation/[^\s]+)", invitation.body).group(1)

    client = app.test_client()
    response = client.post(
        "/login", data={"email": "admin@gamma.example", "password": "any password at all"}
    )
    assert response.status_code == 422  # nothing signs in before the invitation is accepted
    accepted = client.post(link, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/login"
    login(client, "admin@gamma.example", NEW_PASSWORD)
    for path in ("/contracts", "/access-records"):
        assert client.get(path).status_code == 200, path
    assert not _user(app, "admin@gamma.example").must_change_password


# --- idle sessions --------------------------------------------------------------------------


def test_an_idle_session_ends_after_session_idle_minutes(make_app, fixed_clock):
    app = make_app(SESSION_IDLE_MINUTES=30)
    world = build_world(app)
    client = app.test_client()
    login(client, world.emails["admin"])

    clock.set(fixed_clock + timedelta(minutes=29))
    assert _signed_in(client)  # activity keeps the session alive...
    clock.set(fixed_clock + timedelta(minutes=58))
    assert _signed_in(client)
    clock.set(fixed_clock + timedelta(minutes=89))

    response = client.get("/contracts")  # ...31 idle minutes end it

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert [s.ended_reason for s in _sessions(app, world.emails["admin"])] == ["idle"]
    clock.set(fixed_clock + timedelta(minutes=90))
    assert not _signed_in(client)
