"""Signing in behind a proxy and against strangers (issue 13): trusted proxies, limits that a
stranger cannot turn against the owner, the owner told of repeated failures, an absolute
session lifetime, failures and refusals on the record, guessable passwords refused, and
`__Host-` cookies in production."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask import request

from portal import create_app
from portal.clock import clock
from portal.extensions import db
from portal.models import AuditEvent, OutboxEmail, User, UserSession
from portal.services.auth import check_password_strength
from portal.services.errors import PortalError
from tests.factories import PASSWORD, build_world, login, rows, sign_in
from tests.web.routes import bearer, make_api_tokens

PROXY = "10.0.0.2"  # the reverse proxy's own address, as the portal sees the connection
STRANGER = "203.0.113.66"
OWNER = "198.51.100.10"
WRONG = "wrong-Pa55word-tried"


def _post_login(client, email: str, password: str, *, remote: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        "/login",
        data={"email": email, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": remote},
    )


def _events(app, action: str) -> list[AuditEvent]:
    return rows(app, AuditEvent, action=action)


def _signed_in(client) -> bool:
    return client.get("/contracts").status_code == 200


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return match.group(1) if match else None


# --- behind a reverse proxy ---------------------------------------------------------------


def test_behind_one_trusted_proxy_each_client_is_limited_and_recorded_by_its_own_address(
    make_app,
):
    app = make_app(
        RATELIMIT_ENABLED=True, TRUSTED_PROXIES=1, LOGIN_RATE_LIMIT_PER_IP="2 per minute"
    )
    world = build_world(app)
    client = app.test_client()
    admin = world.emails["admin"]
    # What a client writes itself in X-Forwarded-For is not believed: the proxy appends the
    # address it saw, and only that last hop is trusted.
    for _ in range(2):
        response = _post_login(
            client, admin, WRONG, remote=PROXY, forwarded=f"192.0.2.1, {STRANGER}"
        )
        assert response.status_code == 422
    assert _post_login(client, admin, WRONG, remote=PROXY, forwarded=STRANGER).status_code == (429)

    # Another client behind the same proxy is not limited by the first one's attempts.
    response = _post_login(client, admin, PASSWORD, remote=PROXY, forwarded=OWNER)

    assert response.status_code == 302
    assert [e.ip for e in _events(app, "sign_in.failed")] == [STRANGER, STRANGER]
    assert [e.ip for e in _events(app, "signed_in")] == [OWNER]
    (user_session,) = rows(app, UserSession)
    assert user_session.ip == OWNER


def test_without_trusted_proxies_a_client_cannot_claim_another_address(make_app):
    """PORTAL_TRUSTED_PROXIES=0, the default: X-Forwarded-For is ignored."""
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT_PER_IP="2 per minute")
    assert app.config["TRUSTED_PROXIES"] == 0
    world = build_world(app)
    client = app.test_client()
    admin = world.emails["admin"]
    for forwarded in ("192.0.2.1", "192.0.2.2"):
        response = _post_login(client, admin, WRONG, remote=STRANGER, forwarded=forwarded)
        assert response.status_code == 422

    # A third "client" that is the same connection with a new header is the same client.
    response = _post_login(client, admin, PASSWORD, remote=STRANGER, forwarded="192.0.2.3")

    assert response.status_code == 429
    assert [e.ip for e in _events(app, "sign_in.failed")] == [STRANGER, STRANGER]


def test_a_trusted_proxy_also_gives_the_scheme_and_host(make_app):
    """The proxy terminates TLS: the portal sees https and the public host name."""
    app = make_app(TRUSTED_PROXIES=1)
    seen = {}

    @app.get("/_test/where")
    def where():
        seen.update(scheme=request.scheme, host=request.host, addr=request.remote_addr)
        return "ok"

    app.test_client().get(
        "/_test/where",
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "portal.example.jp",
            "X-Forwarded-For": OWNER,
        },
        environ_base={"REMOTE_ADDR": PROXY},
    )
    assert seen == {"scheme": "https", "host": "portal.example.jp", "addr": OWNER}


def test_a_negative_number_of_trusted_proxies_refuses_to_start(make_app):
    with pytest.raises(RuntimeError, match="PORTAL_TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES=-1)


# --- a stranger cannot lock the owner out -------------------------------------------------


def test_a_strangers_failures_from_one_address_do_not_lock_the_owner_out(make_app):
    app = make_app(RATELIMIT_ENABLED=True)  # the default limits: 10 failures per 10 minutes
    world = build_world(app)
    stranger, owner = app.test_client(), app.test_client()
    admin = world.emails["admin"]
    for _ in range(10):
        assert _post_login(stranger, admin, WRONG, remote=STRANGER).status_code == 422

    # The stranger's address is limited for this account, even with the right password...
    assert _post_login(stranger, admin, PASSWORD, remote=STRANGER).status_code == 429
    # ...but the owner, from their own address, signs in.
    assert _post_login(owner, admin, PASSWORD, remote=OWNER).status_code == 302
    assert _signed_in(owner)


def test_only_failures_count_against_an_account_and_address(make_app):
    """The owner signing in again and again from one address is never limited by it."""
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS="2 per minute")
    world = build_world(app)
    admin = world.emails["admin"]
    for _ in range(4):
        assert _post_login(app.test_client(), admin, PASSWORD, remote=OWNER).status_code == 302
    for _ in range(2):
        assert _post_login(app.test_client(), admin, "typo", remote=OWNER).status_code == 422
    assert _post_login(app.test_client(), admin, PASSWORD, remote=OWNER).status_code == 429


# --- the owner is told of repeated failures ------------------------------------------------


def _failure_emails(app) -> list[OutboxEmail]:
    return rows(app, OutboxEmail, kind="sign_in_failures")


def test_the_owner_is_told_once_by_email_of_repeated_failures(make_app, fixed_clock):
    """N failures within M minutes, from any addresses: one e-mail in the owner's language,
    then none for an hour however many more failures come. (5 in 15 minutes by default; 3
    here, to spare argon2 verifications.)"""
    assert make_app().config["SIGN_IN_ALERT_FAILURES"] == 5
    app = make_app(SIGN_IN_ALERT_FAILURES=3)
    assert app.config["SIGN_IN_ALERT_MINUTES"] == 15
    world = build_world(app)
    admin = world.emails["admin"]
    addresses = [f"203.0.113.{n}" for n in range(1, 6)]
    for n, address in enumerate(addresses[:2]):
        clock.set(fixed_clock + timedelta(minutes=6 * n))
        _post_login(app.test_client(), admin, WRONG, remote=address)
    assert _failure_emails(app) == []

    clock.set(fixed_clock + timedelta(minutes=14))
    _post_login(app.test_client(), admin, WRONG, remote=addresses[2])

    (email,) = _failure_emails(app)
    assert email.to_address == admin
    assert email.locale == "en"
    assert email.user_id == world.ids["admin"]
    assert email.subject == "Failed sign-ins to your account on the contract portal"
    assert "3 times in the last 15 minutes" in email.body
    for address in addresses[:3]:
        assert address in email.body
    assert WRONG not in email.body
    assert "/account/password" in email.body

    for n, address in enumerate(addresses[3:]):
        clock.set(fixed_clock + timedelta(minutes=20 + 10 * n))
        _post_login(app.test_client(), admin, WRONG, remote=address)
    assert len(_failure_emails(app)) == 1
    # An hour after the e-mail, repeated failures are told again.
    for n in range(3):
        clock.set(fixed_clock + timedelta(minutes=75 + n))
        _post_login(app.test_client(), admin, WRONG, remote=STRANGER)
    assert len(_failure_emails(app)) == 2
    # The owner still signs in: nothing was locked.
    assert _post_login(app.test_client(), admin, PASSWORD, remote=OWNER).status_code == 302


def test_failures_spread_out_or_on_unknown_addresses_email_nobody(make_app, fixed_clock):
    app = make_app(SIGN_IN_ALERT_FAILURES=3)
    world = build_world(app)
    for n in range(4):
        clock.set(fixed_clock + timedelta(minutes=8 * n))  # at most 2 in any 15 minutes
        _post_login(app.test_client(), world.emails["admin"], WRONG, remote=STRANGER)
    for _ in range(3):
        _post_login(app.test_client(), "nobody@alpha.example", WRONG, remote=STRANGER)
    assert _failure_emails(app) == []
    assert len(_events(app, "sign_in.failed")) == 7


# --- an absolute session lifetime ---------------------------------------------------------


def test_a_busy_session_still_ends_12_hours_after_sign_in(app, client, fixed_clock):
    assert app.config["SESSION_MAX_HOURS"] == 12
    world = build_world(app)
    login(client, world.emails["admin"])
    # Used every 100 minutes (within the 120 idle minutes) for almost 12 hours...
    for minutes in range(100, 12 * 60, 100):
        clock.set(fixed_clock + timedelta(minutes=minutes))
        assert _signed_in(client), minutes

    clock.set(fixed_clock + timedelta(hours=12))
    response = client.get("/contracts")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    (user_session,) = rows(app, UserSession)
    assert user_session.ended_reason == "lifetime"
    login(client, world.emails["admin"])  # signing in again opens a new session
    assert _signed_in(client)


def test_the_session_lifetime_is_configurable(make_app, fixed_clock):
    app = make_app(SESSION_MAX_HOURS=1)
    world = build_world(app)
    client = app.test_client()
    sign_in(app, client, world.emails["member"])
    clock.set(fixed_clock + timedelta(minutes=59))
    assert _signed_in(client)
    clock.set(fixed_clock + timedelta(minutes=60))
    assert not _signed_in(client)


# --- failed sign-ins and refused authorizations on the record -----------------------------


def test_a_wrong_password_is_on_the_record_without_the_password(app, client):
    world = build_world(app)
    response = client.post(
        "/login", data={"email": "Admin@Alpha.example", "password": "my secret guess"}
    )
    assert response.status_code == 422

    (event,) = _events(app, "sign_in.failed")
    assert event.user_id == world.ids["admin"]
    assert event.organisation_id == world.org_a
    assert event.ip == "127.0.0.1"
    assert event.details == {"reason": "wrong_password"}
    assert "my secret guess" not in json.dumps(event.details)


def test_an_unknown_address_is_on_the_record_cut_to_a_bounded_length(app, client):
    build_world(app)
    tried = "x" * 64 + "@" + "d" * 60 + ".unknown.example"
    response = client.post("/login", data={"email": tried, "password": "my secret guess"})
    assert response.status_code == 422

    (event,) = _events(app, "sign_in.failed")
    assert event.user_id is None
    assert event.details["reason"] == "unknown_email"
    assert event.details["email"] == tried[:100]
    assert "my secret guess" not in json.dumps(event.details)


def test_a_deactivated_users_attempt_is_on_the_record(app, client):
    world = build_world(app)
    with app.app_context():
        db.session.get(User, world.ids["member"]).active = False
        db.session.commit()
    client.post("/login", data={"email": world.emails["member"], "password": PASSWORD})
    (event,) = _events(app, "sign_in.failed")
    assert (event.user_id, event.details) == (world.ids["member"], {"reason": "inactive"})


def test_a_refused_page_is_on_the_record_with_the_clients_address(make_app):
    app = make_app(TRUSTED_PROXIES=1)
    world = build_world(app)
    member = app.test_client()
    sign_in(app, member, world.emails["member"])

    response = member.get(
        "/access-records", headers={"X-Forwarded-For": OWNER}, environ_base={"REMOTE_ADDR": PROXY}
    )

    assert response.status_code == 403
    (event,) = _events(app, "authorization.refused")
    assert event.user_id == world.ids["member"]
    assert event.organisation_id == world.org_a
    assert event.ip == OWNER
    assert event.details == {
        "method": "GET",
        "path": "/access-records",
        "endpoint": "contracts.access_records",
    }
    # Pages the user may see are not on the record.
    assert member.get("/contracts").status_code == 200
    assert len(_events(app, "authorization.refused")) == 1


def test_a_refused_api_call_is_on_the_record(app):
    world = build_world(app)
    tokens = make_api_tokens(app, world)

    response = app.test_client().post(
        f"/api/v1/contracts/{world.contract_a}/usage", json={}, headers=bearer(tokens, "member")
    )

    assert response.status_code == 403
    (event,) = _events(app, "authorization.refused")
    assert event.user_id == world.ids["member"]
    assert event.details["path"] == f"/api/v1/contracts/{world.contract_a}/usage"


# --- guessable passwords --------------------------------------------------------------------


def _change_password(client, new: str):
    return client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new, "confirm": new},
    )


@pytest.mark.parametrize(
    "weak",
    [
        "password123456",  # a well-known password
        "imageworks2026",  # the service's name and a year
        "qwertyuiop1234",  # a keyboard walk
        "alphaalpha2027",  # the user's organisation, repeated
    ],
)
def test_a_common_or_guessable_password_is_refused_next_to_the_field(app, client, weak):
    world = build_world(app)
    sign_in(app, client, world.emails["admin"])
    with app.app_context():
        before = db.session.get(User, world.ids["admin"]).password_hash

    response = _change_password(client, weak)

    assert response.status_code == 422
    message = _error(response.get_data(as_text=True), "new_password")
    assert message and "too common or too easy to guess" in message
    with app.app_context():
        assert db.session.get(User, world.ids["admin"]).password_hash == before


def test_a_strong_password_is_accepted(app, client):
    world = build_world(app)
    sign_in(app, client, world.emails["admin"])
    assert _change_password(client, "violet tractor hums at noon").status_code == 302
    login(app.test_client(), world.emails["admin"], "violet tractor hums at noon")


def test_the_users_own_name_makes_a_password_guessable(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        user = User(email="hanako.yamada@example.jp", name="Hanako Yamada")
        with pytest.raises(PortalError, match="too common"):
            check_password_strength("hanakoyamada1990", user)
        check_password_strength("hanakoyamada1990", None)  # unknown to a stranger: fine


# --- __Host- cookies in production --------------------------------------------------------


def test_production_cookies_are_host_prefixed_secure_for_the_whole_site(monkeypatch):
    """`__Host-`: the browser keeps the cookie only if Secure, Path=/ and without Domain."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k7Qz0sV3pL9xW2mB6nR1tY8uE4iO5aSd")
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql://portal@db.internal/portal")
    monkeypatch.setenv("PORTAL_RATELIMIT_STORAGE_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.jp")
    for name in ("PORTAL_CLOCK_NOW", "PORTAL_SECURE_COOKIES", "PORTAL_MAIL_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    app = create_app()
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-portal_session"
    assert app.config["REMEMBER_COOKIE_NAME"] == "__Host-portal_remember"

    # The sign-in page puts its CSRF token in the session: the cookie is set (no database).
    response = app.test_client().get("/login", base_url="https://portal.example.jp")

    (cookie,) = response.headers.getlist("Set-Cookie")
    name, *attributes = [part.strip() for part in cookie.split(";")]
    assert name.startswith("__Host-portal_session=")
    lowered = [a.lower() for a in attributes]
    assert "secure" in lowered
    assert "path=/" in lowered
    assert not any(a.startswith("domain") for a in lowered)


def test_development_cookies_keep_their_plain_name(app):
    assert app.config["SESSION_COOKIE_NAME"] == "portal_session"
