"""Stripe's webhook (R-43): the only way a card payment marks an invoice paid.

`handle_webhook` takes the raw body, checks its signature, and records the event in
`stripe_events` in the same transaction as its effect: a second delivery of the same event,
even one running at the same moment, meets the primary key and changes nothing. It does not
depend on the order of events or on anything recorded before: the PaymentIntent's metadata
name the invoice, and `payment_intent.succeeded` alone is enough to mark it paid.

The view (POST /stripe/webhook, CSRF-exempt) calls it with `request.get_data()`, answers
400 on `WebhookRejected`, and otherwise commits and answers 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from portal.clock import clock
from portal.extensions import db
from portal.models import Invoice, StripeEvent
from portal.payments import gateway
from portal.payments.service import record_card_payment
from portal.services import audit
from portal.transaction import begin_writing

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"


class WebhookRejected(Exception):
    """The body is not a Stripe event signed with our secret: answer 400, change nothing."""


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    event_type: str
    # duplicate | ignored | not_ours | payment_failed, or a CardPaymentOutcome value:
    # recorded | already_recorded | already_settled | amount_mismatch | unknown_invoice
    outcome: str
    invoice_id: int | None = None


def handle_webhook(payload: bytes, signature_header: str | None, secret: str) -> WebhookResult:
    """Verify and apply one delivery (flushes; the caller commits)."""
    try:
        event = gateway.verify_webhook(payload, signature_header, secret)
        event_id, event_type = str(event["id"]), str(event["type"])
        intent = event["data"]["object"]
    except (gateway.BadSignature, KeyError, TypeError) as exc:
        raise WebhookRejected(str(exc)) from exc
    if not isinstance(intent, dict):
        raise WebhookRejected("the event carries no object")
    invoice = _invoice_of(intent) if event_type in (SUCCEEDED, FAILED) else None
    invoice_id = invoice.id if invoice is not None else None
    # The event's row comes before any effect: a concurrent duplicate meets its primary key.
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(
                StripeEvent(
                    id=event_id, type=event_type, invoice_id=invoice_id, received_at=clock.now()
                )
            )
    except IntegrityError:
        return WebhookResult(event_id, event_type, "duplicate", invoice_id)

    if event_type not in (SUCCEEDED, FAILED):
        return WebhookResult(event_id, event_type, "ignored")
    if invoice is None:
        # Another system on the same Stripe account, or an intent not made for an invoice.
        audit.record(
            "payment.stripe_event_not_ours",
            event_id=event_id,
            type=event_type,
            payment_intent=intent.get("id"),
            metadata=intent.get("metadata") or {},
        )
        return WebhookResult(event_id, event_type, "not_ours")
    if event_type == FAILED:
        error = intent.get("last_payment_error") or {}
        audit.record(
            "payment.card_failed",
            organisation_id=invoice.organisation_id,
            subject=invoice,
            event_id=event_id,
            payment_intent=intent.get("id"),
            code=error.get("code") or "",
            message=error.get("message") or "",
        )
        return WebhookResult(event_id, event_type, "payment_failed", invoice_id)

    received = intent.get("amount_received")
    outcome = record_card_payment(
        str(intent["id"]),
        invoice.id,
        int(received if received is not None else intent["amount"]),
        _instant(event.get("created")),
        currency=str(intent.get("currency", "")),
    )
    return WebhookResult(event_id, event_type, outcome.value, invoice_id)


def _invoice_of(intent: dict[str, Any]) -> Invoice | None:
    """The invoice an intent was made for, if its metadata match one of ours exactly."""
    metadata = intent.get("metadata") or {}
    try:
        invoice_id = int(metadata.get("invoice_id", ""))
    except (TypeError, ValueError):
        return None
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        return None
    # Ids repeat between environments sharing an account: the number and owner must match too.
    if metadata.get("invoice_number") != invoice.number or metadata.get("organisation_id") != str(
        invoice.organisation_id
    ):
        return None
    return invoice


def _instant(created: Any) -> datetime:
    """When Stripe made the event (the moment the money was taken), else now."""
    if isinstance(created, int | float) and created > 0:
        return datetime.fromtimestamp(created, UTC)
    return clock.now()
