"""Bank transfers and direct debits recorded by billing staff (R-43)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from portal.extensions import db
from portal.models import AuditEvent, Invoice, InvoiceState, InvoiceStatus, Payment
from portal.payments.service import record_manual_payment
from portal.services.errors import Conflict, NotAllowed, PortalError
from tests.factories import rows, snapshot
from tests.payments.conftest import actor, deliver, intent_event, issue_invoice

RECEIVED = date(2027, 3, 1)  # the fixed clock's Tokyo date


def _record(app, world, invoice_id, kind="billing", **overrides):
    fields = {
        "method": "bank_transfer",
        "received_on": RECEIVED,
        "reference": " MUFG 0301-ALPHA ",
    }
    fields.update(overrides)
    with app.test_request_context():
        payment = record_manual_payment(
            actor(world, kind), db.session.get_one(Invoice, invoice_id), ip="10.0.0.1", **fields
        )
        db.session.commit()
        return payment.id


def test_billing_staff_record_a_bank_transfer(app, world, invoice_id):
    _record(app, world, invoice_id)
    (payment,) = rows(app, Payment)
    assert payment.invoice_id == invoice_id
    assert payment.method == "bank_transfer"
    assert payment.amount == 445_500
    assert payment.received_on == RECEIVED
    assert payment.reference == "MUFG 0301-ALPHA"
    assert payment.recorded_by_id == world.ids["billing"]
    assert payment.stripe_payment_intent_id is None
    with app.app_context():
        state = db.session.get_one(InvoiceState, invoice_id)
        assert state.status == InvoiceStatus.PAID and state.paid_at is not None
    (audit,) = rows(app, AuditEvent, action="payment.recorded")
    assert audit.user_id == world.ids["billing"] and audit.subject_id == invoice_id
    assert audit.organisation_id == world.org_a
    assert audit.details["method"] == "bank_transfer" and audit.ip == "10.0.0.1"


def test_the_invoice_in_hand_shows_paid_after_the_entry(app, world, invoice_id):
    """The page rendered after the entry reads the new state from the same session."""
    with app.test_request_context():
        invoice = db.session.get_one(Invoice, invoice_id)
        assert invoice.state.status == InvoiceStatus.OPEN
        record_manual_payment(
            actor(world, "billing"), invoice, method="bank_transfer", received_on=RECEIVED
        )
        assert invoice.state.status == InvoiceStatus.PAID
        db.session.commit()


def test_a_direct_debit_is_recorded_the_same_way(app, world, invoice_id):
    _record(app, world, invoice_id, method="direct_debit", reference="")
    assert [p.method for p in rows(app, Payment)] == ["direct_debit"]


def test_a_second_entry_is_refused(app, world, invoice_id):
    _record(app, world, invoice_id)
    before = snapshot(app)
    with pytest.raises(Conflict, match="already paid"):
        _record(app, world, invoice_id, reference="again")
    assert snapshot(app) == before


def test_a_card_payment_then_a_bank_transfer_is_refused(app, world, invoice_id):
    assert deliver(app, intent_event(app, invoice_id)).outcome == "recorded"
    with pytest.raises(Conflict):
        _record(app, world, invoice_id)
    assert [p.method for p in rows(app, Payment)] == ["card"]


def test_a_credited_invoice_is_not_paid(app, world):
    invoice_id = issue_invoice(app, world.org_a, status=InvoiceStatus.CREDITED)
    with pytest.raises(Conflict, match="credit note"):
        _record(app, world, invoice_id)
    assert rows(app, Payment) == []


@pytest.mark.parametrize("kind", ["support", "support_viewing", "admin", "sales_agent"])
def test_only_billing_staff_record_payments(app, world, invoice_id, kind):
    with pytest.raises(NotAllowed):
        _record(app, world, invoice_id, kind=kind)
    assert rows(app, Payment) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"method": "card"}, "method"),  # cards are paid through Stripe only
        ({"method": "cash"}, "method"),
        ({"received_on": date(2027, 3, 2)}, "received_on"),  # tomorrow in Tokyo
        ({"reference": "x" * 201}, "reference"),
    ],
)
def test_an_entry_that_cannot_be_right_is_refused(app, world, invoice_id, overrides, field):
    with pytest.raises(PortalError) as refused:
        _record(app, world, invoice_id, **overrides)
    assert refused.value.field == field
    assert rows(app, Payment) == []


def test_staff_entries_and_stripe_events_at_the_same_moment_leave_one_payment(
    app, world, invoice_id
):
    """Four staff entries racing four card events for the same invoice: one payment."""
    events = [
        intent_event(app, invoice_id, event_id=f"evt_{n}", intent_id=f"pi_{n}") for n in range(4)
    ]
    start = threading.Barrier(8)

    def staff(_):
        start.wait()
        try:
            _record(app, world, invoice_id)
        except Conflict:
            return "refused"
        return "recorded"

    def stripe(payload):
        start.wait()
        return deliver(app, payload).outcome

    with ThreadPoolExecutor(8) as pool:
        entries = [pool.submit(staff, n) for n in range(4)]
        cards = [pool.submit(stripe, payload) for payload in events]
        outcomes = [f.result() for f in entries + cards]
    assert outcomes.count("recorded") == 1
    assert set(outcomes) - {"recorded"} <= {"refused", "already_settled"}
    assert len(rows(app, Payment)) == 1
    with app.app_context():
        assert db.session.get_one(InvoiceState, invoice_id).status == InvoiceStatus.PAID


def test_an_entry_rolled_back_leaves_the_invoice_open(app, world, invoice_id):
    """The service only flushes: the caller's rollback undoes the payment, on SQLite too."""
    with app.test_request_context():
        record_manual_payment(
            actor(world, "billing"),
            db.session.get_one(Invoice, invoice_id),
            method="bank_transfer",
            received_on=RECEIVED,
        )
        db.session.rollback()
    assert rows(app, Payment) == []
    with app.app_context():
        assert db.session.get_one(InvoiceState, invoice_id).status == InvoiceStatus.OPEN


def _credit(app, world, invoice_id, amount=10_000):
    from portal.services import invoicing

    with app.test_request_context():
        invoicing.issue_credit_note(
            actor(world, "billing"),
            db.session.get_one(Invoice, invoice_id),
            amount=amount,
            tax_rate_percent=10,
            reason="Partial refund for an outage",
            ip="",
        )
        db.session.commit()


def test_after_a_partial_credit_note_the_payment_is_the_amount_due(app, world, invoice_id):
    """R-42/R-43: 445,500 less a credit note of 10,000 + 1,000 tax leaves 434,500 to pay."""
    _credit(app, world, invoice_id)
    _record(app, world, invoice_id)
    (payment,) = rows(app, Payment)
    assert payment.amount == 434_500
