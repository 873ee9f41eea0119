"""Paying invoices (R-43): by card through Stripe, or by bank transfer or direct debit
recorded by billing staff. An invoice is marked paid exactly once.

The database guards "once": a `Payment` row is unique per invoice and per PaymentIntent, it
is inserted in a savepoint together with a conditional UPDATE of the invoice's state
(`WHERE status = 'open'`), so two deliveries, two staff entries or a card payment racing a
bank transfer leave one payment. Like every service these flush; the caller commits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal.clock import clock, tokyo_date
from portal.extensions import db
from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Payment,
    PaymentMethod,
)
from portal.payments import gateway
from portal.permissions import Actor, can_manage_billing, can_pay_invoices
from portal.presentation import long_date
from portal.services import audit, invoicing
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

MANUAL_METHODS = (PaymentMethod.BANK_TRANSFER, PaymentMethod.DIRECT_DEBIT)
MAX_REFERENCE = 200
# PaymentIntent states in which the customer can still enter a card.
PAYABLE_INTENT_STATES = ("requires_payment_method", "requires_confirmation", "requires_action")


class CardPaymentOutcome(enum.StrEnum):
    RECORDED = "recorded"  # the invoice is now paid
    ALREADY_RECORDED = "already_recorded"  # this PaymentIntent was recorded before: nothing done
    ALREADY_SETTLED = "already_settled"  # paid otherwise or credited: the money needs a refund
    AMOUNT_MISMATCH = "amount_mismatch"  # not the invoice's total in yen: not marked paid
    UNKNOWN_INVOICE = "unknown_invoice"  # no such invoice (or a credit note): nothing done


@dataclass(frozen=True)
class CardPaymentStart:
    """What the payment page needs to let Stripe.js collect the card."""

    intent_id: str
    client_secret: str
    amount: int
    currency: str


def start_card_payment(actor: Actor, invoice: Invoice, *, ip: str = "") -> CardPaymentStart:
    """The invoice's PaymentIntent (one per invoice, made once at Stripe) for Stripe.js.

    Paying is confirmed only by Stripe's signed webhook (R-43), never by this call.
    """
    # R-70..R-72: administrators and sales agents, in the invoice's own portal; never an
    # agency, never staff viewing as the customer.
    if not can_pay_invoices(actor) or actor.organisation_id != invoice.organisation_id:
        raise NotAllowed(_("You cannot pay this invoice."))
    _refuse_unless_open(invoice)
    amount = invoicing.amount_due(invoice)
    if amount < gateway.MIN_AMOUNT:
        raise Conflict(_("This invoice cannot be paid by card. Please pay by bank transfer."))
    customer_id = gateway.ensure_customer(invoice.organisation)
    intent = gateway.create_payment_intent(invoice, customer_id, amount)
    if intent.status not in PAYABLE_INTENT_STATES:
        # Paid or being paid at Stripe; the webhook will mark the invoice (or already did).
        raise Conflict(_("A card payment for this invoice is already in progress."))
    audit.record(
        "payment.card_started",
        actor=actor,
        organisation_id=invoice.organisation_id,
        subject=invoice,
        ip=ip,
        invoice_number=invoice.number,
        payment_intent=intent.id,
        amount=intent.amount,
    )
    db.session.flush()
    return CardPaymentStart(
        intent_id=intent.id,
        client_secret=intent.client_secret,
        amount=intent.amount,
        currency=intent.currency,
    )


def record_card_payment(
    intent_id: str,
    invoice_id: int,
    amount: int,
    received_at: datetime,
    *,
    currency: str = gateway.CURRENCY,
) -> CardPaymentOutcome:
    """Mark the invoice paid by a succeeded PaymentIntent, once (R-43).

    Only for an event whose signature was verified (see webhooks.handle_webhook).
    """
    if _payment_of_intent(intent_id) is not None:
        return CardPaymentOutcome.ALREADY_RECORDED
    invoice = db.session.get(Invoice, invoice_id)
    details = {"payment_intent": intent_id, "amount": amount, "currency": currency}
    if invoice is None or invoice.kind != DocumentKind.INVOICE:
        audit.record("payment.card_unknown_invoice", invoice_id=invoice_id, **details)
        return CardPaymentOutcome.UNKNOWN_INVOICE
    status = db.session.scalar(
        sa.select(InvoiceState.status).where(InvoiceState.invoice_id == invoice.id)
    )
    # A settled invoice owes nothing: money for it is a refund to make, whatever the
    # amount, and _settle below says so; an open one must be paid its amount due exactly.
    if status == InvoiceStatus.OPEN and (
        currency != gateway.CURRENCY or amount != invoicing.amount_due(invoice)
    ):
        # The amount due is read after the status: a payment committed in between (a
        # concurrent delivery, or staff) makes it 0. That is no mismatch but a settled invoice.
        if _payment_of_intent(intent_id) is not None:
            return CardPaymentOutcome.ALREADY_RECORDED
        if _has_payment(invoice):
            return _settled_already(invoice, details)
        audit.record(
            "payment.card_amount_mismatch",
            organisation_id=invoice.organisation_id,
            subject=invoice,
            invoice_total=invoice.total,
            amount_due=invoicing.amount_due(invoice),
            **details,
        )
        return CardPaymentOutcome.AMOUNT_MISMATCH
    payment = Payment(
        invoice_id=invoice.id,
        method=PaymentMethod.CARD,
        amount=amount,
        received_on=tokyo_date(received_at),
        reference=intent_id,
        stripe_payment_intent_id=intent_id,
    )
    if not _settle(invoice, payment, paid_at=received_at):
        if _payment_of_intent(intent_id) is not None:  # a concurrent delivery recorded it
            return CardPaymentOutcome.ALREADY_RECORDED
        return _settled_already(invoice, details)
    audit.record(
        "payment.card_recorded",
        organisation_id=invoice.organisation_id,
        subject=invoice,
        payment_id=payment.id,
        **details,
    )
    db.session.flush()
    return CardPaymentOutcome.RECORDED


@dataclass(frozen=True)
class ManualPayment:
    """A bank transfer or direct debit as it would be recorded now (the confirmation step)."""

    invoice: Invoice
    method: PaymentMethod
    received_on: date
    reference: str
    amount: int  # the amount due


def check_manual_payment(
    actor: Actor,
    invoice: Invoice,
    *,
    method: PaymentMethod | str,
    received_on: date,
    reference: str = "",
) -> ManualPayment:
    """Every check of record_manual_payment, and the payment it would record; writes
    nothing."""
    if not can_manage_billing(actor):
        raise NotAllowed(_("Only billing staff can record payments."))
    if str(method) not in MANUAL_METHODS:
        raise PortalError(_("Choose bank transfer or direct debit."), field="method")
    if received_on > clock.today():
        raise PortalError(_("The payment date cannot be in the future."), field="received_on")
    if received_on < invoice.issued_on:
        # A payment for an invoice is received after it was issued (issue 13: 0001-01-01 paid).
        raise PortalError(
            _(
                "The payment date cannot be before the invoice date (%(date)s).",
                date=long_date(invoice.issued_on),
            ),
            field="received_on",
        )
    reference = reference.strip()
    if len(reference) > MAX_REFERENCE:
        raise PortalError(
            _("Keep the reference to %(max)d characters.", max=MAX_REFERENCE), field="reference"
        )
    _refuse_unless_open(invoice)
    return ManualPayment(
        invoice=invoice,
        method=PaymentMethod(method),
        received_on=received_on,
        reference=reference,
        amount=invoicing.amount_due(invoice),
    )


def record_manual_payment(
    actor: Actor,
    invoice: Invoice,
    *,
    method: PaymentMethod | str,
    received_on: date,
    reference: str = "",
    ip: str = "",
) -> Payment:
    """R-43: billing staff record a bank transfer or a direct debit of the amount due (R-44:
    the total less any credit notes)."""
    checked = check_manual_payment(
        actor, invoice, method=method, received_on=received_on, reference=reference
    )
    payment = Payment(
        invoice_id=invoice.id,
        method=checked.method,
        amount=checked.amount,
        received_on=received_on,
        reference=checked.reference,
        recorded_by_id=actor.user.id,
    )
    if not _settle(invoice, payment, paid_at=clock.now()):
        raise Conflict(_("This invoice is already paid."))
    audit.record(
        "payment.recorded",
        actor=actor,
        organisation_id=invoice.organisation_id,
        subject=invoice,
        ip=ip,
        payment_id=payment.id,
        method=checked.method.value,
        amount=payment.amount,
        received_on=received_on.isoformat(),
        reference=checked.reference,
    )
    db.session.flush()
    return payment


def payable_by_card(invoice: Invoice, due: int) -> bool:
    """Whether the portal offers to pay this invoice by card: open, with an amount due (R-44)
    that Stripe accepts."""
    return invoicing.is_payable(invoice, due) and due >= gateway.MIN_AMOUNT


def _refuse_unless_open(invoice: Invoice) -> None:
    if invoice.kind != DocumentKind.INVOICE:
        raise Conflict(_("A credit note is not paid."))
    status = db.session.scalar(
        sa.select(InvoiceState.status).where(InvoiceState.invoice_id == invoice.id)
    )
    if status == InvoiceStatus.PAID:
        raise Conflict(_("This invoice is already paid."))
    if status != InvoiceStatus.OPEN:
        raise Conflict(_("This invoice is settled by a credit note and is not to be paid."))


class _NotOpen(Exception):
    """Rolls the savepoint back when the invoice was no longer open."""


def _settle(invoice: Invoice, payment: Payment, *, paid_at: datetime) -> bool:
    """Insert the payment and mark the invoice paid, both or neither; False if settled."""
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(payment)
            db.session.flush()
            claimed = db.session.execute(
                sa.update(InvoiceState)
                .where(
                    InvoiceState.invoice_id == invoice.id,
                    InvoiceState.status == InvoiceStatus.OPEN,
                )
                .values(status=InvoiceStatus.PAID, paid_at=paid_at)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise _NotOpen
    except (IntegrityError, _NotOpen):
        return False
    loaded = db.session.identity_map.get(db.session.identity_key(InvoiceState, invoice.id))
    if loaded is not None:  # the UPDATE bypassed the session: read the state again
        db.session.refresh(loaded)
    return True


def _settled_already(invoice: Invoice, details: dict) -> CardPaymentOutcome:
    """Money came in for an invoice that is settled already: staff must refund it."""
    audit.record(
        "payment.card_for_settled_invoice",
        organisation_id=invoice.organisation_id,
        subject=invoice,
        needs_refund=True,
        **details,
    )
    return CardPaymentOutcome.ALREADY_SETTLED


def _has_payment(invoice: Invoice) -> bool:
    return (
        db.session.scalar(sa.select(Payment.id).where(Payment.invoice_id == invoice.id)) is not None
    )


def _payment_of_intent(intent_id: str) -> Payment | None:
    return db.session.scalar(
        sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id)
    )
