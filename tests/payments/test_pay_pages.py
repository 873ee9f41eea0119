"""Paying an invoice by card through the pages and Stripe's webhook endpoint (R-43, R-72).

The customer starts the payment in the portal, pays on the Stripe test server (standing in
for Stripe.js), and Stripe's signed event posted to /stripe/webhook marks the invoice paid,
once, however often it arrives.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Invoice, InvoiceState, Payment
from tests.factories import enter_client, signed_in_client, view_as
from tests.payments.conftest import signature


def _status(app, invoice_id: int) -> str:
    with app.app_context():
        return db.session.get_one(InvoiceState, invoice_id).status.value


def _payments(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Payment))


def _post_event(client, body: bytes, header: str | None = None):
    return client.post(
        "/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": header or signature(body)},
        content_type="application/json",
    )


def test_a_card_payment_and_its_webhook_mark_the_invoice_paid_once(
    app, world, stripe_server, invoice_id
):
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.post(f"/invoices/{invoice_id}/pay")
    assert page.status_code == 200
    assert "https://js.stripe.com" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    intent_id = secret.split("_secret_")[0]
    assert "¥445,500" in html
    assert _status(app, invoice_id) == "open"  # starting pays nothing

    assert stripe_server.pay_with_card(intent_id) == "succeeded"
    event = stripe_server.event_for(intent_id)
    stripe = app.test_client()  # Stripe has no session, no CSRF token: only its signature
    first = _post_event(stripe, event)
    assert (first.status_code, first.get_json()["outcome"]) == (200, "recorded")
    again = _post_event(stripe, event)
    assert (again.status_code, again.get_json()["outcome"]) == (200, "duplicate")
    assert _status(app, invoice_id) == "paid"
    assert _payments(app) == 1
    assert "is paid" in admin.get(f"/invoices/{invoice_id}/paid").get_data(as_text=True)
    detail = admin.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert 'data-testid="pay"' not in detail


def test_an_unsigned_or_tampered_event_changes_nothing(app, world, stripe_server, invoice_id):
    admin = signed_in_client(app, world.emails["admin"])
    html = admin.post(f"/invoices/{invoice_id}/pay").get_data(as_text=True)
    intent_id = re.search(r'data-client-secret="([^"]+)"', html).group(1).split("_secret_")[0]
    stripe_server.pay_with_card(intent_id)
    event = stripe_server.event_for(intent_id)
    stripe = app.test_client()
    assert _post_event(stripe, event, header="t=1,v1=00").status_code == 400
    tampered = event.replace(b'"amount": 445500', b'"amount": 1')
    assert _post_event(stripe, tampered, header=signature(event)).status_code == 400
    assert _status(app, invoice_id) == "open"
    assert _payments(app) == 0


def test_staff_viewing_as_the_customer_and_agencies_cannot_pay(
    app, world, stripe_server, invoice_id
):
    staff = signed_in_client(app, world.emails["support"])
    view_as(staff, world.org_a, world.ids["admin"])
    assert staff.get(f"/invoices/{invoice_id}").status_code == 200  # they may look
    assert 'data-testid="pay"' not in staff.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert staff.post(f"/invoices/{invoice_id}/pay").status_code == 403
    agency = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agency, world.org_a)
    assert agency.post(f"/invoices/{invoice_id}/pay").status_code == 403
    assert stripe_server.posts() == []  # nobody reached Stripe
    with app.app_context():
        assert db.session.get_one(Invoice, invoice_id).total == 445_500


def test_a_sales_agent_pays_for_the_client(app, world, stripe_server, invoice_id):
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a)
    assert agent.post(f"/invoices/{invoice_id}/pay").status_code == 200


def test_after_a_credit_note_the_pay_page_asks_the_amount_due(
    app, world, stripe_server, invoice_id
):
    """R-44: ¥445,500 less a credit note of ¥10,000 + ¥1,000 tax: every Pay says ¥434,500,
    and that is what Stripe is asked for."""
    from portal.services import invoicing
    from tests.payments.conftest import actor

    with app.test_request_context():
        invoicing.issue_credit_note(
            actor(world, "billing"),
            db.session.get_one(Invoice, invoice_id),
            amount=10_000,
            tax_rate_percent=10,
            reason="Partial refund for an outage",
            ip="",
        )
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    listing = admin.get("/invoices").get_data(as_text=True)
    assert re.search(r'data-testid="pay-INV-00000001">\s*Pay ¥434,500\s*<', listing)
    detail = admin.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert re.search(r'data-testid="pay">\s*Pay ¥434,500 by card\s*<', detail)
    html = admin.post(f"/invoices/{invoice_id}/pay").get_data(as_text=True)
    assert "Pay ¥434,500 by card" in html and "Pay ¥445,500" not in html
    assert 'data-testid="amount-due">¥434,500<' in html
    assert "¥445,500" in html and "−¥11,000" in html  # how the amount due follows
    intent_id = re.search(r'data-client-secret="([^"]+)"', html).group(1).split("_secret_")[0]
    assert stripe_server.browser().v1.payment_intents.retrieve(intent_id).amount == 434_500
