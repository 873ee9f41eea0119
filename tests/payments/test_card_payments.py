"""Card payments through Stripe (R-43), against a local fake Stripe (localstripe)."""

from __future__ import annotations

import socket
import threading

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Organisation,
    Payment,
    PaymentMethod,
    StripeCustomer,
)
from portal.payments import gateway
from portal.payments.service import start_card_payment
from portal.services.errors import Conflict, NotAllowed
from tests.factories import rows, snapshot
from tests.payments.conftest import actor, deliver, intent_event, issue_invoice, stored


def _start(app, world, invoice_id, kind="admin"):
    with app.test_request_context():
        started = start_card_payment(
            actor(world, kind), db.session.get_one(Invoice, invoice_id), ip="127.0.0.1"
        )
        db.session.commit()
        return started


def _state(app, invoice_id):
    with app.test_request_context():
        state = db.session.get_one(InvoiceState, invoice_id)
        return state.status, state.paid_at


def test_the_stripe_customer_is_created_once_and_then_reused(app, world, stripe_server):
    with app.test_request_context():
        organisation = db.session.get_one(Organisation, world.org_a)
        first = gateway.ensure_customer(organisation)
        db.session.commit()
        again = gateway.ensure_customer(organisation)
    assert again == first and first.startswith("cus_")
    assert [c.customer_id for c in stored(app, StripeCustomer)] == [first]
    # The second call found the stored row and did not ask Stripe again.
    assert stripe_server.posts() == [("/v1/customers", f"customer-org-{world.org_a}")]


def test_a_customer_made_but_not_stored_is_found_again_by_its_idempotency_key(
    app, world, stripe_server
):
    """The transaction that made the customer rolled back: the retry gets the same one."""
    with app.test_request_context():
        organisation = db.session.get_one(Organisation, world.org_a)
        lost = gateway.ensure_customer(organisation)
        db.session.rollback()
        kept = gateway.ensure_customer(organisation)
        db.session.commit()
    assert kept == lost
    assert len(stored(app, StripeCustomer)) == 1


def test_the_payment_intent_is_for_the_invoice_total_in_yen(app, world, stripe_server, invoice_id):
    started = _start(app, world, invoice_id)
    assert (started.amount, started.currency) == (445_500, "jpy")  # zero-decimal: not x100
    assert started.client_secret.startswith(f"{started.intent_id}_secret_")
    with app.test_request_context():
        intent = gateway.retrieve_payment_intent(started.intent_id)
        invoice = db.session.get_one(Invoice, invoice_id)
        customer = db.session.get_one(StripeCustomer, world.org_a).customer_id
        assert intent.amount == invoice.total == 445_500
        assert intent.currency == "jpy"
        assert intent.customer == customer
        assert intent.metadata == {
            "invoice_id": str(invoice_id),
            "invoice_number": invoice.number,
            "organisation_id": str(world.org_a),
        }
    (event,) = rows(app, AuditEvent, action="payment.card_started")
    assert event.user_id == world.ids["admin"] and event.subject_id == invoice_id
    assert event.details["payment_intent"] == started.intent_id


def test_starting_twice_gives_the_same_intent(app, world, stripe_server, invoice_id):
    """The same idempotency key for the same invoice: one PaymentIntent, however often."""
    first = _start(app, world, invoice_id)
    second = _start(app, world, invoice_id)
    assert second.intent_id == first.intent_id
    assert second.client_secret == first.client_secret
    key = f"invoice-{invoice_id}-payment-intent-{first.amount}"
    assert stripe_server.posts() == [
        ("/v1/customers", f"customer-org-{world.org_a}"),
        ("/v1/payment_intents", key),
        ("/v1/payment_intents", key),
    ]
    with app.test_request_context():
        listed = stripe_server.browser().v1.payment_intents.list()
    assert [i.id for i in listed.data] == [first.intent_id]


def test_each_invoice_has_its_own_intent(app, world, stripe_server, invoice_id):
    april = issue_invoice(
        app, world.org_a, billing_month="2027-04", subtotal=50_000, tax_total=5_000
    )
    assert _start(app, world, invoice_id).intent_id != _start(app, world, april).intent_id
    assert _start(app, world, april).amount == 55_000


def test_a_card_payment_end_to_end_marks_the_invoice_paid_once(
    app, world, stripe_server, invoice_id
):
    """Intent, the customer's card at the fake Stripe, its signed webhook; twice is once."""
    started = _start(app, world, invoice_id)
    assert _state(app, invoice_id)[0] == InvoiceStatus.OPEN  # starting pays nothing
    assert stripe_server.pay_with_card(started.intent_id) == "succeeded"
    assert _state(app, invoice_id)[0] == InvoiceStatus.OPEN  # only the webhook does

    payload = stripe_server.event_for(started.intent_id)
    result = deliver(app, payload)
    assert (result.event_type, result.outcome, result.invoice_id) == (
        "payment_intent.succeeded",
        "recorded",
        invoice_id,
    )
    status, paid_at = _state(app, invoice_id)
    assert status == InvoiceStatus.PAID and paid_at is not None
    (payment,) = rows(app, Payment)
    assert payment.invoice_id == invoice_id
    assert payment.method == PaymentMethod.CARD
    assert payment.amount == 445_500
    assert payment.stripe_payment_intent_id == started.intent_id
    assert payment.recorded_by_id is None

    assert deliver(app, payload).outcome == "duplicate"
    assert len(rows(app, Payment)) == 1
    assert len(rows(app, AuditEvent, action="payment.card_recorded")) == 1
    # Asking to pay again is refused before Stripe is asked.
    posts = stripe_server.posts()
    with pytest.raises(Conflict, match="already paid"):
        _start(app, world, invoice_id)
    assert stripe_server.posts() == posts


def test_a_declined_card_is_recorded_and_the_invoice_stays_open(
    app, world, stripe_server, invoice_id
):
    started = _start(app, world, invoice_id)
    assert stripe_server.pay_with_card(started.intent_id, "pm_card_chargeCustomerFail") == (
        "declined"
    )
    result = deliver(
        app, stripe_server.event_for(started.intent_id, "payment_intent.payment_failed")
    )
    assert result.outcome == "payment_failed"
    assert _state(app, invoice_id)[0] == InvoiceStatus.OPEN
    (event,) = rows(app, AuditEvent, action="payment.card_failed")
    assert event.details["code"] == "card_declined"
    # The customer tries again on the same intent. (localstripe cannot confirm an intent
    # again after a decline, so Stripe's event for the second card is written here.)
    again = _start(app, world, invoice_id)
    assert again.intent_id == started.intent_id
    succeeded = intent_event(app, invoice_id, event_id="evt_second_card", intent_id=again.intent_id)
    assert deliver(app, succeeded).outcome == "recorded"
    assert _state(app, invoice_id)[0] == InvoiceStatus.PAID


def test_the_webhook_may_come_before_start_card_payment_returns(
    app, world, stripe_server, invoice_id, monkeypatch
):
    """Stripe's event lands (and commits) between Stripe's answer and our commit."""
    with app.test_request_context():
        gateway.ensure_customer(db.session.get_one(Organisation, world.org_a))
        db.session.commit()
    create = gateway.create_payment_intent
    outcomes = []

    def create_then_pay(invoice, customer_id, amount):
        intent = create(invoice, customer_id, amount)
        assert stripe_server.pay_with_card(intent.id) == "succeeded"
        # The webhook is another request: another thread, session and transaction.
        thread = threading.Thread(
            target=lambda: outcomes.append(deliver(app, stripe_server.event_for(intent.id)))
        )
        thread.start()
        thread.join(30)
        return intent

    monkeypatch.setattr(gateway, "create_payment_intent", create_then_pay)
    _start(app, world, invoice_id)
    assert [o.outcome for o in outcomes] == ["recorded"]
    assert _state(app, invoice_id)[0] == InvoiceStatus.PAID
    assert len(rows(app, Payment)) == 1


def test_the_webhook_needs_nothing_that_start_card_payment_stored(
    app, world, stripe_server, invoice_id
):
    """The request that made the intent failed after Stripe answered and rolled back."""
    with app.test_request_context():
        started = start_card_payment(actor(world, "admin"), db.session.get_one(Invoice, invoice_id))
        db.session.rollback()
    assert (
        stored(app, StripeCustomer) == []
        and rows(app, AuditEvent, action="payment.card_started") == []
    )
    assert stripe_server.pay_with_card(started.intent_id) == "succeeded"
    assert deliver(app, stripe_server.event_for(started.intent_id)).outcome == "recorded"
    assert _state(app, invoice_id)[0] == InvoiceStatus.PAID


@pytest.mark.parametrize(
    "kind",
    [
        "support_viewing",  # staff viewing as the customer never pay
        "agency_agent",  # agencies have nothing to do with fees and invoices
        "member",  # administrators manage invoices
        "other_admin",  # another organisation's invoice
        "billing",  # the back office records payments; it does not pay by card
    ],
)
def test_who_may_not_start_a_card_payment(app, world, stripe_server, invoice_id, kind):
    with app.test_request_context():
        who = actor(world, kind)
        db.session.commit()
        before = snapshot(app)
        with pytest.raises(NotAllowed):
            start_card_payment(who, db.session.get_one(Invoice, invoice_id))
    assert snapshot(app) == before
    assert stripe_server.posts() == []


def test_a_sales_agent_may_pay_for_the_client(app, world, stripe_server, invoice_id):
    """R-71: sales agents act for their clients in fees and invoices."""
    started = _start(app, world, invoice_id, kind="sales_agent")
    assert started.amount == 445_500
    (event,) = rows(app, AuditEvent, action="payment.card_started")
    assert event.user_id == world.ids["sales_agent"] and event.entry_id is not None


def test_an_invoice_below_stripes_minimum_is_not_paid_by_card(app, world, stripe_server):
    """Stripe charges at least 50 yen; a smaller total is paid by bank transfer."""
    invoice_id = issue_invoice(app, world.org_a, subtotal=40, tax_total=4)
    with pytest.raises(Conflict, match="bank transfer"):
        _start(app, world, invoice_id)
    assert stripe_server.posts() == []


@pytest.mark.parametrize("status", [InvoiceStatus.PAID, InvoiceStatus.CREDITED])
def test_a_settled_invoice_cannot_be_paid(app, world, stripe_server, status):
    invoice_id = issue_invoice(app, world.org_a, status=status)
    with pytest.raises(Conflict):
        _start(app, world, invoice_id)
    assert stripe_server.posts() == []


def test_stripe_out_of_reach_gives_a_message_and_stores_nothing(
    make_app, world, invoice_id, monkeypatch
):
    monkeypatch.setattr(gateway, "MAX_NETWORK_RETRIES", 0)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = unused.getsockname()[1]
        app = make_app(
            BABEL_DEFAULT_LOCALE="en",
            STRIPE_SECRET_KEY="sk_test_portal",
            STRIPE_API_BASE=f"http://127.0.0.1:{port}",
        )
        before = snapshot(app)
        with pytest.raises(gateway.PaymentUnavailable, match="not available at the moment"):
            _start(app, world, invoice_id)
    assert snapshot(app) == before


def test_without_a_secret_key_card_payments_are_off(make_app, world, invoice_id):
    app = make_app(STRIPE_SECRET_KEY="")
    with pytest.raises(gateway.PaymentUnavailable):
        _start(app, world, invoice_id)


def test_no_state_change_happens_outside_the_payments_tables(app, world, stripe_server, invoice_id):
    """The frozen invoice rows are untouched by paying (R-42): only the state and payment."""
    with app.test_request_context():
        frozen_before = db.session.execute(sa.select(Invoice.__table__)).all()
    started = _start(app, world, invoice_id)
    stripe_server.pay_with_card(started.intent_id)
    deliver(app, stripe_server.event_for(started.intent_id))
    with app.test_request_context():
        assert db.session.execute(sa.select(Invoice.__table__)).all() == frozen_before


def test_after_a_partial_credit_note_the_card_pays_the_amount_due(
    app, world, stripe_server, invoice_id
):
    """R-42/R-43: the PaymentIntent is for 445,500 less the credit note's 11,000, and only that
    amount marks the invoice paid."""
    from tests.payments.test_manual_payments import _credit

    first = _start(app, world, invoice_id)
    assert first.amount == 445_500
    _credit(app, world, invoice_id)
    started = _start(app, world, invoice_id)
    assert started.amount == 434_500 and started.intent_id != first.intent_id
    assert stripe_server.pay_with_card(started.intent_id) == "succeeded"
    deliver(app, stripe_server.event_for(started.intent_id))
    (payment,) = rows(app, Payment)
    assert (payment.amount, payment.stripe_payment_intent_id) == (434_500, started.intent_id)
