"""Stripe's webhook (R-43): signed, once per event, in any order, for the invoice's total only."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.extensions import db
from portal.models import AuditEvent, InvoiceState, InvoiceStatus, Payment, StripeEvent
from portal.payments.webhooks import WebhookRejected, handle_webhook
from tests.factories import rows, snapshot
from tests.payments.conftest import (
    WEBHOOK_SECRET,
    deliver,
    intent_event,
    issue_invoice,
    signature,
    stored,
)

THREADS = 8


def _status(app, invoice_id):
    with app.app_context():
        return db.session.get_one(InvoiceState, invoice_id).status


def _reject(app, payload, header, secret=WEBHOOK_SECRET):
    with app.app_context(), pytest.raises(WebhookRejected):
        handle_webhook(payload, header, secret)


# --- signatures ---------------------------------------------------------------------------------


def test_a_signed_event_marks_the_invoice_paid(app, invoice_id):
    """No customer, no intent, nothing recorded before: the event alone is enough."""
    assert stored(app, InvoiceState)[0].status == InvoiceStatus.OPEN
    result = deliver(app, intent_event(app, invoice_id))
    assert (result.event_id, result.outcome, result.invoice_id) == (
        "evt_test_1",
        "recorded",
        invoice_id,
    )
    assert _status(app, invoice_id) == InvoiceStatus.PAID
    (payment,) = rows(app, Payment)
    assert (payment.amount, payment.stripe_payment_intent_id) == (445_500, "pi_test_1")
    (event,) = stored(app, StripeEvent)
    assert (event.id, event.type, event.invoice_id) == (
        "evt_test_1",
        "payment_intent.succeeded",
        invoice_id,
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        None,
        "t=1,v1=00",
        "garbage",
        signature(b"{}"),  # signed, but for another body
        signature(b"x", secret="whsec_someone_else"),
    ],
    # Named, not shown: the signatures hold the time, and every test worker must collect the
    # same names (pytest-xdist).
    ids=["empty", "none", "malformed", "garbage", "another-body", "another-secret"],
)
def test_a_bad_signature_is_rejected_and_nothing_changes(app, invoice_id, header):
    before = snapshot(app)
    _reject(app, intent_event(app, invoice_id), header)
    assert snapshot(app) == before


def test_an_event_signed_with_another_secret_is_rejected(app, invoice_id):
    payload = intent_event(app, invoice_id)
    before = snapshot(app)
    _reject(app, payload, signature(payload, secret="whsec_someone_else"))
    assert snapshot(app) == before


def test_a_tampered_body_is_rejected(app, invoice_id):
    """The signature covers the raw bytes: changing one field after signing is caught."""
    payload = intent_event(app, invoice_id, amount=1)
    header = signature(payload)
    tampered = json.loads(payload)
    tampered["data"]["object"]["amount"] = tampered["data"]["object"]["amount_received"] = 445_500
    before = snapshot(app)
    _reject(app, json.dumps(tampered).encode(), header)
    # Even re-serialising the same JSON differently is a different body.
    _reject(app, json.dumps(json.loads(payload), indent=1).encode(), header)
    assert snapshot(app) == before


def test_an_old_signature_is_rejected(app, invoice_id):
    """A delivery replayed after Stripe's five minutes' tolerance."""
    payload = intent_event(app, invoice_id)
    before = snapshot(app)
    _reject(app, payload, signature(payload, timestamp=int(time.time()) - 600))
    assert snapshot(app) == before


def test_without_a_configured_secret_every_event_is_rejected(app, invoice_id):
    payload = intent_event(app, invoice_id)
    _reject(app, payload, signature(payload, secret=""), secret="")


def test_a_signed_body_that_is_not_an_event_is_rejected(app):
    for payload in (b"not json", b'{"no": "id"}'):
        _reject(app, payload, signature(payload))
    assert stored(app, StripeEvent) == []


# --- once ---------------------------------------------------------------------------------------


def test_the_same_event_twice_pays_once(app, invoice_id):
    payload = intent_event(app, invoice_id)
    assert deliver(app, payload).outcome == "recorded"
    assert deliver(app, payload).outcome == "duplicate"
    assert len(rows(app, Payment)) == 1
    assert len(stored(app, StripeEvent)) == 1
    assert len(rows(app, AuditEvent, action="payment.card_recorded")) == 1


def test_another_event_for_the_same_intent_changes_nothing(app, invoice_id):
    assert deliver(app, intent_event(app, invoice_id, event_id="evt_a")).outcome == "recorded"
    assert deliver(app, intent_event(app, invoice_id, event_id="evt_b")).outcome == (
        "already_recorded"
    )
    assert len(rows(app, Payment)) == 1


@pytest.mark.parametrize("same_event", [True, False], ids=["same event", "events of one intent"])
def test_deliveries_at_the_same_moment_record_one_payment(app, invoice_id, same_event):
    """Stripe retries while the first delivery is still running: one payment, whatever wins."""
    payloads = [
        intent_event(app, invoice_id, event_id="evt_1" if same_event else f"evt_{n}")
        for n in range(THREADS)
    ]
    start = threading.Barrier(THREADS)

    def run(payload):
        start.wait()
        return deliver(app, payload).outcome

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = sorted(pool.map(run, payloads))
    later = "duplicate" if same_event else "already_recorded"
    assert outcomes == sorted(["recorded"] + [later] * (THREADS - 1))
    assert len(rows(app, Payment)) == 1
    assert _status(app, invoice_id) == InvoiceStatus.PAID
    assert len(stored(app, StripeEvent)) == (1 if same_event else THREADS)
    assert len(rows(app, AuditEvent, action="payment.card_recorded")) == 1


# --- any order ----------------------------------------------------------------------------------


def test_a_failure_after_the_success_leaves_the_invoice_paid(app, invoice_id):
    deliver(app, intent_event(app, invoice_id, event_id="evt_ok"))
    failed = intent_event(
        app, invoice_id, event_id="evt_failed", event_type="payment_intent.payment_failed"
    )
    assert deliver(app, failed).outcome == "payment_failed"
    assert _status(app, invoice_id) == InvoiceStatus.PAID
    assert len(rows(app, Payment)) == 1


def test_a_failure_then_a_success_pays(app, invoice_id):
    failed = intent_event(
        app, invoice_id, event_id="evt_failed", event_type="payment_intent.payment_failed"
    )
    assert deliver(app, failed).outcome == "payment_failed"
    assert _status(app, invoice_id) == InvoiceStatus.OPEN
    assert rows(app, Payment) == []
    (audit,) = rows(app, AuditEvent, action="payment.card_failed")
    assert audit.details["message"] == "Your card was declined."
    assert deliver(app, intent_event(app, invoice_id, event_id="evt_ok")).outcome == "recorded"
    assert _status(app, invoice_id) == InvoiceStatus.PAID


# --- amounts and strangers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(445_499, "jpy"), (445_501, "jpy"), (4_455_000, "jpy"), (445_500, "usd")],
)
def test_an_amount_other_than_the_total_does_not_pay(app, invoice_id, amount, currency):
    payload = intent_event(app, invoice_id, amount=amount, currency=currency)
    result = deliver(app, payload)
    assert result.outcome == "amount_mismatch"
    assert _status(app, invoice_id) == InvoiceStatus.OPEN
    assert rows(app, Payment) == []
    (audit,) = rows(app, AuditEvent, action="payment.card_amount_mismatch")
    assert audit.subject_id == invoice_id
    assert (audit.details["amount"], audit.details["invoice_total"]) == (amount, 445_500)
    assert deliver(app, payload).outcome == "duplicate"  # and it stays on the record once


def test_an_event_of_another_type_is_stored_and_ignored(app, invoice_id):
    payload = json.dumps(
        {"id": "evt_customer", "object": "event", "type": "customer.created", "created": 1,
         "data": {"object": {"id": "cus_1", "object": "customer"}}}
    ).encode()  # fmt: skip
    before = snapshot(app, skip=("stripe_events",))
    assert deliver(app, payload).outcome == "ignored"
    assert deliver(app, payload).outcome == "duplicate"
    assert snapshot(app, skip=("stripe_events",)) == before
    (event,) = stored(app, StripeEvent)
    assert (event.type, event.invoice_id) == ("customer.created", None)


@pytest.mark.parametrize(
    "metadata",
    [
        {},  # an intent not made by the portal
        {"invoice_id": "999", "invoice_number": "INV-00000999", "organisation_id": "1"},
        {"invoice_id": "1", "invoice_number": "INV-00000042", "organisation_id": "1"},
        {"invoice_id": "1", "invoice_number": "INV-00000001", "organisation_id": "2"},
        {"invoice_id": "one"},
    ],
)
def test_an_intent_for_none_of_our_invoices_changes_nothing(app, invoice_id, metadata):
    """Another system on the same Stripe account (e.g. staging) reuses invoice ids."""
    assert invoice_id == 1
    result = deliver(app, intent_event(app, invoice_id, metadata=metadata))
    assert (result.outcome, result.invoice_id) == ("not_ours", None)
    assert _status(app, invoice_id) == InvoiceStatus.OPEN
    assert rows(app, Payment) == []
    assert rows(app, AuditEvent, action="payment.stripe_event_not_ours")


def test_a_card_payment_for_an_invoice_paid_otherwise_is_flagged_for_refund(app, world):
    invoice_id = issue_invoice(app, world.org_a, status=InvoiceStatus.PAID)
    result = deliver(app, intent_event(app, invoice_id))
    assert result.outcome == "already_settled"
    assert rows(app, Payment) == []
    (audit,) = rows(app, AuditEvent, action="payment.card_for_settled_invoice")
    assert audit.details["needs_refund"] is True
    assert audit.organisation_id == world.org_a


def test_a_second_intent_for_a_paid_invoice_is_flagged_for_refund(app, invoice_id):
    """Two intents for one invoice (the idempotency key expired after a day): one counts."""
    assert deliver(app, intent_event(app, invoice_id, event_id="e1", intent_id="pi_1")).outcome == (
        "recorded"
    )
    second = intent_event(app, invoice_id, event_id="e2", intent_id="pi_2")
    assert deliver(app, second).outcome == "already_settled"
    assert [p.stripe_payment_intent_id for p in rows(app, Payment)] == ["pi_1"]
    assert rows(app, AuditEvent, action="payment.card_for_settled_invoice")


def test_a_delivery_rolled_back_is_processed_when_stripe_retries(app, invoice_id):
    """The event row commits with its effect or not at all, on SQLite too."""
    payload = intent_event(app, invoice_id)
    with app.app_context():
        assert handle_webhook(payload, signature(payload), WEBHOOK_SECRET).outcome == "recorded"
        db.session.rollback()  # e.g. the commit failed
    assert stored(app, StripeEvent) == [] and rows(app, Payment) == []
    assert _status(app, invoice_id) == InvoiceStatus.OPEN
    assert deliver(app, payload).outcome == "recorded"
