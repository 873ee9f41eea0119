"""CSRF: every POST route refuses a form without the session's token (CSRF enabled here,
unlike BASE_CONFIG), and a refused request changes nothing."""

from __future__ import annotations

from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent
from tests.factories import become, build_world, csrf_token, sign_in, snapshot
from tests.web.routes import app_routes, post_data, route_ids, url_of

# Who sends the forged POST to each route: an actor for whom the route would do something.
# Sign-in is forged for an anonymous visitor (login CSRF), with the right password; the
# agent who enters A is signed in but not yet inside it.
CSRF_ACTOR = {
    "main.language": "admin",
    "main.leave": "sales_agent",
    "auth.login": "anonymous",
    "auth.logout": "admin",
    "account.password": "admin",
    "partners.enter": "sales_agent",
    "staff.onboard": "support",
    "staff.view_as": "support",
    "staff.new_partner": "support",
    "staff.assign_client": "support",
    "staff.withdraw_client": "support",
    "staff.record_usage": "support",
    "contracts.confirm": "admin",
    "contracts.withdraw": "admin",
    "account.tokens": "admin",
    "account.revoke_token": "admin",
    "invoices.access": "admin",
    "invoices.pay": "admin",
    "billing.record_payment": "billing",
    "billing.issue_credit_note": "billing",
    "billing.send_reminder": "billing",
    # No staff administrator in the world: billing staff reach the route (403 with a token).
    "billing.provider": "billing",
    # a forged reset request or link submission from a signed-out browser.
    "auth.forgot_password": "anonymous",
    "auth.reset_password": "anonymous",
    "auth.accept_invitation": "anonymous",
    "users.invite": "admin",
    "users.resend_invitation": "admin",
    "users.remove": "admin",
    "account.misuse": "admin",
    "security.mark_handled": "support",
    "terms.consent": "admin",
    # No staff administrator in the world: support staff reach the route (403 with a token).
    "staff_terms.publish": "support",
    "organisation.information": "admin",
    "staff.retry_mail": "support",
    "sla.rotate_feeds": "admin",
    "sla.file_claim": "admin",
    "staff_sla.new_incident": "support",
    "staff_sla.post_update": "support",
    "staff_sla.correct_incident": "support",
    "staff_sla.new_maintenance": "support",
    "staff_sla.end_maintenance": "support",
    "staff_sla.review_claim": "billing",
    "staff_sla.paper_claim": "support",
    # Issue 12: I-NET SERVICE.
    "inet_public.apply": "anonymous",
    "inet_public.verify": "anonymous",
    "inet.apply": "admin",
    "inet.contacts": "admin",
    "inet.end": "admin",
    "staff_inet.register": "support",
    "staff_inet.cancel": "support",
    "inet.new_holder": "admin",
    "inet.edit_holder": "admin",
    "inet.change_photo": "admin",
    "inet.remove_holder": "admin",
    "inet.import_holders": "admin",
    "inet.run_import": "admin",
    "inet.cancel_import": "admin",
    "inet.new_order": "admin",
    "inet.edit_order": "admin",
    "inet.submit_order": "admin",
    "inet.withdraw_order": "admin",
    "inet.cancel_order": "admin",
    "production.step": "production",
    # Issue 14: partners sign up clients and manage their people.
    "partners.new_application": "sales_agent",
    "partners.withdraw_application": "sales_agent",
    "staff.approve_application": "support",
    "staff.refuse_application": "support",
    "partners.invite_agent": "partner_admin",
    "partners.resend_agent_invitation": "partner_admin",
    "partners.remove_agent": "partner_admin",
    "staff.invite_partner_agent": "support",
}


def test_every_post_without_csrf_token_is_refused_and_changes_nothing(make_app):
    """Every POST route answers 400 without a CSRF token and leaves the database as it was;
    the same request with the token is not refused (so the 400 is the token's doing)."""
    app = make_app(WTF_CSRF_ENABLED=True)
    world = build_world(app)
    # The API takes no cookies, only bearer tokens, so it has no CSRF token to check (test_api
    # shows a cookie alone gets 401 there); Stripe's webhook is proven by its signature
    # (tests/payments).
    post_routes = sorted(
        e
        for e, m in app_routes(app)
        if m == "POST" and not e.startswith(("api.", "stripe_webhook."))
    )
    assert set(post_routes) == CSRF_ACTOR.keys(), "name the CSRF test's actor of each POST"
    for endpoint in post_routes:
        actor = CSRF_ACTOR[endpoint]
        client = app.test_client()
        if endpoint == "partners.enter":
            sign_in(app, client, world.emails[actor])
        else:
            become(app, client, world, actor)
        url = url_of(app, endpoint, **route_ids(app, world, endpoint))
        data = post_data(endpoint, world, actor)
        before = snapshot(app, skip=("audit_events",))
        events_before = _audit_ids(app)

        response = client.post(url, data=data)

        assert response.status_code == 400, f"{endpoint}: {response.status_code}"
        assert snapshot(app, skip=("audit_events",)) == before, f"{endpoint} changed data"
        # a request inside a customer's portal is on the record even when refused;
        # nothing else may have been written.
        assert _audit_actions(app, after=events_before) <= {"request"}, endpoint

        token = csrf_token(client, "/login" if actor == "anonymous" else "/account/password")
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code != 400, f"{endpoint} refused even with its token"


def _audit_ids(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.coalesce(db.func.max(AuditEvent.id), 0)))


def _audit_actions(app: Flask, *, after: int) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(db.select(AuditEvent.action).where(AuditEvent.id > after)))
