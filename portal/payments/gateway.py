"""The one module that talks to Stripe (R-43): customers, PaymentIntents, webhook signatures.

Nothing else imports `stripe`. Every call that changes something at Stripe carries an
idempotency key derived from our own ids, so a retry (ours, the SDK's or a user's second
click) finds the object the first call made instead of making another one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import stripe
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Invoice, Organisation, StripeCustomer
from portal.services.errors import PortalError
from portal.transaction import begin_writing

log = logging.getLogger(__name__)

CURRENCY = "jpy"  # a zero-decimal currency, so Stripe's amount is the integer yen as is
MIN_AMOUNT = 50  # Stripe charges no less than 50 yen
TIMEOUT_SECONDS = 10  # per attempt; a page waits at most ~35 s in all
MAX_NETWORK_RETRIES = 2  # the SDK retries with the same idempotency key


class PaymentUnavailable(PortalError):
    """Stripe cannot be reached, refused the call, or is not configured (answers 503)."""


class BadSignature(Exception):
    """A webhook whose Stripe-Signature does not match its raw body (answers 400)."""


@dataclass(frozen=True)
class Intent:
    """What the portal needs of a Stripe PaymentIntent."""

    id: str
    client_secret: str
    status: str  # requires_payment_method, requires_action, processing, succeeded, ...
    amount: int
    currency: str
    customer: str | None
    metadata: dict[str, str]


def customer_idempotency_key(organisation_id: int) -> str:
    return f"customer-org-{organisation_id}"


def intent_idempotency_key(invoice_id: int, amount: int) -> str:
    """One PaymentIntent per invoice and amount due: a credit note issued after the customer
    opened the payment page makes a new one for the smaller amount."""
    return f"invoice-{invoice_id}-payment-intent-{amount}"


def ensure_customer(organisation: Organisation) -> str:
    """The organisation's Stripe customer id, created at Stripe the first time (flushes)."""
    stored = db.session.get(StripeCustomer, organisation.id)
    if stored is not None:
        return stored.customer_id
    params: dict[str, Any] = {
        "name": organisation.legal_name,
        "metadata": {"organisation_id": str(organisation.id)},
    }
    if organisation.billing_email:
        params["email"] = organisation.billing_email
    customer = _call(
        lambda client: client.v1.customers.create(
            params=params,
            options={"idempotency_key": customer_idempotency_key(organisation.id)},
        )
    )
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(StripeCustomer(organisation_id=organisation.id, customer_id=customer.id))
    except IntegrityError:
        # A concurrent request stored it first; the same key gave it the same customer.
        stored = db.session.scalar(
            sa.select(StripeCustomer).where(StripeCustomer.organisation_id == organisation.id)
        )
        if stored is None:
            raise
        return stored.customer_id
    return customer.id


def create_payment_intent(invoice: Invoice, customer_id: str, amount: int) -> Intent:
    """The invoice's PaymentIntent for the amount due in yen; the same one however often
    asked."""
    intent = _call(
        lambda client: client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": CURRENCY,
                "customer": customer_id,
                "payment_method_types": ["card"],
                "metadata": {
                    "invoice_id": str(invoice.id),
                    "invoice_number": invoice.number,
                    "organisation_id": str(invoice.organisation_id),
                },
            },
            options={"idempotency_key": intent_idempotency_key(invoice.id, amount)},
        )
    )
    return _intent(intent)


def retrieve_payment_intent(intent_id: str) -> Intent:
    return _intent(_call(lambda client: client.v1.payment_intents.retrieve(intent_id)))


def verify_webhook(payload: bytes, signature_header: str | None, secret: str) -> dict[str, Any]:
    """The event in a webhook body, once its signature over the raw bytes is checked."""
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(str(exc)) from exc
    except ValueError as exc:  # not JSON, or not a v1 event
        raise BadSignature("the body is not a Stripe event") from exc
    return event.to_dict()


def _intent(intent: Any) -> Intent:
    values = intent.to_dict()
    customer = values.get("customer")
    return Intent(
        id=values["id"],
        client_secret=values.get("client_secret") or "",
        status=values["status"],
        amount=int(values["amount"]),
        currency=values["currency"],
        customer=customer["id"] if isinstance(customer, dict) else customer,
        metadata=dict(values.get("metadata") or {}),
    )


def _call(request: Any) -> Any:
    try:
        return request(_client())
    except stripe.StripeError as exc:
        log.warning("Stripe call failed: %s", exc, exc_info=exc)
        raise PaymentUnavailable(
            _("Card payments are not available at the moment. Please try again later.")
        ) from exc


def _client() -> stripe.StripeClient:
    """One client per key and API base, kept on the app (it pools its connections)."""
    config = current_app.config
    api_key, api_base = config.get("STRIPE_SECRET_KEY", ""), config.get("STRIPE_API_BASE", "")
    if not api_key:
        log.error("PORTAL_STRIPE_SECRET_KEY is not set: card payments are off")
        raise PaymentUnavailable(
            _("Card payments are not available at the moment. Please try again later.")
        )
    clients: dict[tuple[str, str], stripe.StripeClient] = current_app.extensions.setdefault(
        "portal_stripe_clients", {}
    )
    client = clients.get((api_key, api_base))
    if client is None:
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.new_default_http_client(timeout=TIMEOUT_SECONDS),
            max_network_retries=MAX_NETWORK_RETRIES,
        )
        clients[(api_key, api_base)] = client
    return client
