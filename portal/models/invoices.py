"""Invoices and credit notes (R-40..R-43), their payments and the Stripe records.

An issued document is frozen (R-42): every row here is written once at issue, with the
recipient and the issuer as they were registered that day; a correction is a credit note
(適格返還請求書) that references the original. Database triggers refuse UPDATE of the frozen
columns and any DELETE (see migration 0003), so not even a bug can change one.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now
from portal.models.organisations import Organisation
from portal.models.users import User


class DocumentKind(enum.StrEnum):
    INVOICE = "invoice"  # 適格請求書
    CREDIT_NOTE = "credit_note"  # 適格返還請求書


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"  # issued, not yet paid
    PAID = "paid"
    CREDITED = "credited"  # a credit note settles the whole of it


class PaymentMethod(enum.StrEnum):
    CARD = "card"  # through Stripe
    BANK_TRANSFER = "bank_transfer"
    DIRECT_DEBIT = "direct_debit"


class DocumentCounter(Base):
    """R-40: numbers without gaps, one sequence per kind of document.

    The counter row is updated in the same transaction as the document it numbers, so a
    rolled-back issue gives its number back and two runs at once take turns.
    """

    __tablename__ = "document_counters"

    kind: Mapped[DocumentKind] = mapped_column(
        enum_type(DocumentKind, "document_kind"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(Base):
    """An invoice or a credit note, frozen once issued (R-40, R-42)."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("kind", "sequence"),
        # one invoice per contract holder per billing month, however often the run goes.
        sa.Index(
            "uq_invoices_one_per_month",
            "organisation_id",
            "billing_month",
            unique=True,
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        ),
        sa.CheckConstraint(
            "(kind = 'credit_note') = (original_invoice_id IS NOT NULL)",
            name="credit_note_references_original",
        ),
        sa.CheckConstraint("subtotal + tax_total = total", name="total_adds_up"),
        sa.CheckConstraint(
            "length(provider_registration_number) = 14", name="registration_number_given"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DocumentKind] = mapped_column(enum_type(DocumentKind, "document_kind"))
    sequence: Mapped[int]  # gapless per kind
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)  # e.g. "INV-00000123"
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    billing_month: Mapped[str] = mapped_column(sa.String(7), index=True)  # e.g. "2027-04"
    period_start: Mapped[date]  # the transaction period (the billing month)
    period_end: Mapped[date]
    issued_on: Mapped[date] = mapped_column(index=True)
    due_on: Mapped[date]
    locale: Mapped[str] = mapped_column(sa.String(5))  # the language of the document
    # The recipient and the issuer as registered on the day of issue.
    recipient_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    recipient_postal_code: Mapped[str] = mapped_column(sa.String(10), default="")
    recipient_address: Mapped[str] = mapped_column(sa.String(300), default="")
    provider_name: Mapped[str] = mapped_column(sa.String(200))
    provider_registration_number: Mapped[str] = mapped_column(sa.String(14))
    provider_address: Mapped[str] = mapped_column(sa.String(300), default="")
    provider_phone: Mapped[str] = mapped_column(
        sa.String(40), default="", server_default=sa.text("''")
    )
    # the account to pay into by bank transfer, as it was on the day of issue (None on
    # invoices issued before the portal kept it).
    provider_bank: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    # Integer yen; a credit note's amounts are positive and mean money returned.
    subtotal: Mapped[int]
    tax_total: Mapped[int]
    total: Mapped[int] = mapped_column(index=True)
    tax_summary: Mapped[list[dict[str, int]]] = mapped_column(sa.JSON)  # per rate, R-40
    original_invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"))
    reason: Mapped[str] = mapped_column(sa.Text, default="")  # a credit note's reason
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The PDF, rendered once from the rows above and never again.
    pdf: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))

    organisation: Mapped[Organisation] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position"
    )
    original: Mapped[Invoice | None] = relationship(remote_side=[id])
    state: Mapped[InvoiceState] = relationship(back_populates="invoice", uselist=False)

    def tax_rows(self) -> list[dict[str, int]]:
        return list(self.tax_summary)


class InvoiceLine(Base):
    """One line of an issued document; a ledger charge is invoiced once (unique)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(40))  # monthly_fee, initial_fee, shortfall, ...
    contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contracts.id"))
    description_ja: Mapped[str] = mapped_column(sa.String(300))
    description_en: Mapped[str] = mapped_column(sa.String(300))
    amount: Mapped[int]  # yen, tax excluded
    tax_rate_percent: Mapped[int]
    ledger_charge_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_charges.id"), unique=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    def description(self, locale: str) -> str:
        return self.description_ja if locale == "ja" else self.description_en


class InvoiceState(Base):
    """What may change about an issued document: whether it is paid, and its reminders.

    Kept apart from the frozen rows, so the triggers can refuse every UPDATE of those.
    """

    __tablename__ = "invoice_states"
    __table_args__ = (
        sa.CheckConstraint(
            "(status = 'paid') = (paid_at IS NOT NULL)", name="paid_at_matches_status"
        ),
    )

    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), primary_key=True)
    status: Mapped[InvoiceStatus] = mapped_column(
        enum_type(InvoiceStatus, "invoice_status"), default=InvoiceStatus.OPEN, index=True
    )
    paid_at: Mapped[datetime | None]
    last_reminded_on: Mapped[date | None]
    reminders_sent: Mapped[int] = mapped_column(default=0)

    invoice: Mapped[Invoice] = relationship(back_populates="state")


class Payment(Base):
    """R-43: how an invoice was paid. One payment settles one invoice, once (unique)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), unique=True)
    method: Mapped[PaymentMethod] = mapped_column(enum_type(PaymentMethod, "payment_method"))
    amount: Mapped[int]
    received_on: Mapped[date]
    reference: Mapped[str] = mapped_column(sa.String(200), default="")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)

    invoice: Mapped[Invoice] = relationship()
    recorded_by: Mapped[User | None] = relationship()


class PaymentReminder(Base):
    """R-33: a reminder sent for an overdue invoice (the e-mail goes through the outbox)."""

    __tablename__ = "payment_reminders"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "sent_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    sent_on: Mapped[date]
    days_overdue: Mapped[int]
    sent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)


class StripeCustomer(Base):
    """R-43: one Stripe customer per organisation."""

    __tablename__ = "stripe_customers"

    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id"), primary_key=True
    )
    customer_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class StripeEvent(Base):
    """A webhook event processed once: a second delivery of the same id is ignored."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime] = mapped_column(default=now)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"))
