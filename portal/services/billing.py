"""The back office's invoices: search and CSV export (R-42), overdue invoices and payment
reminders (R-33).

R-42 / the Electronic Bookkeeping Act: issued documents can be searched by issue date, amount
(total, tax included) and counterparty (the recipient as frozen on the document), each alone
or combined. The CSV export takes the same criteria, so what a search shows is what it exports.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.clock import TOKYO
from portal.extensions import db
from portal.models import (
    AuditEvent,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceStatus,
    Organisation,
    Payment,
    PaymentReminder,
)
from portal.paging import Page, paginate
from portal.permissions import Actor, can_change_provider_settings, can_manage_billing
from portal.services import audit, invoicing, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.spreadsheet import safe_cell
from portal.transaction import begin_writing

PER_PAGE = 50
CSV_BATCH = 500
# R-33 (IW 17(1)①): "15 days have passed since the reminder" (催告後15日を経過). The day of the
# reminder is not counted (Civil Code art. 140), so the contract may be ended from day 16 on.
DAYS_AFTER_REMINDER = 15
# What a search may filter on besides the stored status: open invoices past their due date.
STATUSES = ("open", "overdue", "paid", "credited")


# --- search (R-42) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Criteria:
    """A search of issued documents; every criterion is optional and they combine with AND."""

    issued_from: date | None = None
    issued_to: date | None = None
    amount_min: int | None = None  # total, tax included, yen
    amount_max: int | None = None
    counterparty: str = ""  # part of the recipient's name, any case
    kind: DocumentKind | None = None
    status: str | None = None  # one of STATUSES; only invoices have one


def _like(text: str) -> str:
    """A LIKE pattern for a part of a name: the user's % and _ are plain characters."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(criteria: Criteria, today: date) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if criteria.issued_from:
        where.append(Invoice.issued_on >= criteria.issued_from)
    if criteria.issued_to:
        where.append(Invoice.issued_on <= criteria.issued_to)
    if criteria.amount_min is not None:
        where.append(Invoice.total >= criteria.amount_min)
    if criteria.amount_max is not None:
        where.append(Invoice.total <= criteria.amount_max)
    counterparty = criteria.counterparty.strip()
    if counterparty:
        where.append(sa.func.lower(Invoice.recipient_name).like(_like(counterparty), escape="\\"))
    if criteria.kind:
        where.append(Invoice.kind == criteria.kind)
    if criteria.status:
        # A credit note is never paid or overdue: a status asks for invoices.
        where.append(Invoice.kind == DocumentKind.INVOICE)
        if criteria.status == "overdue":
            where += [InvoiceState.status == InvoiceStatus.OPEN, Invoice.due_on < today]
        else:
            where.append(InvoiceState.status == InvoiceStatus(criteria.status))
    return where


def _matching(criteria: Criteria, today: date, *columns: sa.ColumnElement) -> sa.Select:
    """The matching documents (or the columns given of them)."""
    return (
        sa.select(*(columns or (Invoice,)))
        .select_from(Invoice)
        .join(InvoiceState, InvoiceState.invoice_id == Invoice.id)
        .where(*_conditions(criteria, today))
    )


_NEWEST_FIRST = (Invoice.issued_on.desc(), Invoice.id.desc())


def search(
    criteria: Criteria, *, today: date, page: int = 1, per_page: int = PER_PAGE
) -> Page[Invoice]:
    """One page of the documents matching, newest first (`total`: all that match)."""
    query = _matching(criteria, today).options(
        selectinload(Invoice.state), selectinload(Invoice.original)
    )
    return paginate(query.order_by(*_NEWEST_FIRST), page, per_page)


# --- a customer's invoices and credit notes, by page (R-44, issue 15) ----------------------------

DOCUMENTS_PER_PAGE = 50


def documents_page(organisation: Organisation, page: int) -> Page[Invoice]:
    """One page of an organisation's invoices and credit notes, newest first, with their state."""
    query = (
        sa.select(Invoice)
        .where(Invoice.organisation_id == organisation.id)
        .options(selectinload(Invoice.state), selectinload(Invoice.original))
        .order_by(*_NEWEST_FIRST)
    )
    return paginate(query, page, DOCUMENTS_PER_PAGE)


def open_invoices_of(organisation: Organisation) -> list[Invoice]:
    """R-44: the organisation's open invoices, on whichever page of the list they are: what
    its outstanding total sums (invoicing.outstanding)."""
    return list(
        db.session.scalars(
            sa.select(Invoice)
            .join(InvoiceState, InvoiceState.invoice_id == Invoice.id)
            .where(
                Invoice.organisation_id == organisation.id,
                Invoice.kind == DocumentKind.INVOICE,
                InvoiceState.status == InvoiceStatus.OPEN,
            )
            .options(selectinload(Invoice.state))
            .order_by(Invoice.due_on, Invoice.id)
        )
    )


# --- CSV (R-42) --------------------------------------------------------------------------------


def tax_rates_in(criteria: Criteria, today: date) -> list[int]:
    """The tax rates on the matching documents' lines, highest first: one column pair each."""
    ids = _matching(criteria, today, Invoice.id)
    rates = db.session.scalars(
        sa.select(InvoiceLine.tax_rate_percent).where(InvoiceLine.invoice_id.in_(ids)).distinct()
    )
    return sorted(rates, reverse=True)


def csv_header(rates: list[int]) -> list[str]:
    per_rate = [f"{name}_{rate}%" for rate in rates for name in ("taxable", "tax")]
    return [
        "number",
        "kind",
        "issued_on",
        "billing_month",
        "period_start",
        "period_end",
        "counterparty",
        "issuer_registration_number",
        "subtotal",
        *per_rate,
        "tax_total",
        "total",
        "due_on",
        "status",
        "paid_at",
        "original_number",
    ]


def _cell_text(text: str) -> str:
    """A name that Excel would read as a formula is kept as text (CSV injection)."""
    return str(safe_cell(text))


def _csv_row(invoice: Invoice, rates: list[int]) -> list[object]:
    by_rate = {row["rate_percent"]: row for row in invoice.tax_summary}
    per_rate: list[object] = []
    for rate in rates:
        row = by_rate.get(rate)
        per_rate += [row["taxable"], row["tax"]] if row else ["", ""]
    is_invoice = invoice.kind == DocumentKind.INVOICE
    paid_at = invoice.state.paid_at if is_invoice else None
    return [
        invoice.number,
        invoice.kind.value,
        invoice.issued_on.isoformat(),
        invoice.billing_month,
        invoice.period_start.isoformat(),
        invoice.period_end.isoformat(),
        _cell_text(invoice.recipient_name),
        invoice.provider_registration_number,
        invoice.subtotal,
        *per_rate,
        invoice.tax_total,
        invoice.total,
        invoice.due_on.isoformat() if is_invoice else "",
        invoice.state.status.value if is_invoice else "",
        paid_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S") if paid_at else "",
        invoice.original.number if invoice.original else "",
    ]


def csv_chunks(criteria: Criteria, *, today: date) -> Iterator[str]:
    """The matching documents as CSV for Excel in Japan (UTF-8 with a BOM), oldest first,
    produced in batches so that any number of documents streams in little memory."""
    rates = tax_rates_in(criteria, today)
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes where needed
    buffer.write("\ufeff")
    writer.writerow(csv_header(rates))
    query = (
        _matching(criteria, today)
        .options(selectinload(Invoice.state), selectinload(Invoice.original))
        .order_by(Invoice.issued_on, Invoice.id)
        .execution_options(yield_per=CSV_BATCH)
    )
    for count, invoice in enumerate(db.session.scalars(query), start=1):
        writer.writerow(_csv_row(invoice, rates))
        if count % CSV_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- one document --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentDetail:
    invoice: Invoice
    payment: Payment | None
    reminders: list[PaymentReminder]
    credit_notes: list[Invoice]
    credited: int  # tax included, by the credit notes so far
    days_overdue: int
    amount_due: int  # total less credit notes and payments
    bank: dict[str, str] | None  # the account to pay into, as issued

    @property
    def remaining(self) -> int:
        """What is left to credit (and, while open, to pay), tax included."""
        return self.invoice.total - self.credited

    @property
    def is_invoice(self) -> bool:
        return self.invoice.kind == DocumentKind.INVOICE

    @property
    def is_open(self) -> bool:
        return self.is_invoice and self.invoice.state.status == InvoiceStatus.OPEN

    @property
    def tax_rates(self) -> list[int]:
        return [row["rate_percent"] for row in self.invoice.tax_summary]


def document(invoice_id: int) -> Invoice | None:
    return db.session.scalar(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id)
        .options(
            selectinload(Invoice.lines),
            selectinload(Invoice.state),
            selectinload(Invoice.original),
        )
    )


def detail_of(invoice: Invoice, *, today: date) -> DocumentDetail:
    credit_notes = list(
        db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.original_invoice_id == invoice.id)
            .order_by(Invoice.issued_on, Invoice.id)
        )
    )
    return DocumentDetail(
        invoice=invoice,
        payment=db.session.scalar(sa.select(Payment).where(Payment.invoice_id == invoice.id)),
        reminders=reminders_of([invoice.id])[invoice.id],
        credit_notes=credit_notes,
        credited=sum(note.total for note in credit_notes),
        days_overdue=invoicing.days_overdue(invoice, today),
        amount_due=invoicing.amount_due(invoice),
        bank=invoicing.transfer_account(invoice),
    )


def reminders_of(invoice_ids: list[int]) -> dict[int, list[PaymentReminder]]:
    found: dict[int, list[PaymentReminder]] = defaultdict(list)
    if invoice_ids:
        for reminder in db.session.scalars(
            sa.select(PaymentReminder)
            .where(PaymentReminder.invoice_id.in_(invoice_ids))
            .order_by(PaymentReminder.sent_on)
        ):
            found[reminder.invoice_id].append(reminder)
    return found


# --- overdue invoices and reminders (R-33) ------------------------------------------------------


def may_end_contract_from(first_reminder_on: date) -> date:
    """R-33: the first day the provider may end the contract if the invoice is still unpaid."""
    return first_reminder_on + timedelta(days=DAYS_AFTER_REMINDER + 1)


@dataclass(frozen=True)
class OverdueInvoice:
    invoice: Invoice
    days_overdue: int
    amount_due: int  # total less credit notes and payments, tax included
    reminders: list[PaymentReminder]
    today: date

    @property
    def may_end_contract_from(self) -> date | None:
        if not self.reminders:
            return None
        return may_end_contract_from(self.reminders[0].sent_on)

    @property
    def may_end_contract(self) -> bool:
        """R-33: unpaid 15 days after a reminder: the provider may end the contract."""
        start = self.may_end_contract_from
        return start is not None and self.today >= start

    @property
    def reminded_today(self) -> bool:
        return bool(self.reminders) and self.reminders[-1].sent_on == self.today


OVERDUE_PER_PAGE = 50


def overdue_page(today: date, page: int) -> Page[OverdueInvoice]:
    """Open invoices past their due date, the longest overdue first, by page (issue 15)."""
    query = (
        sa.select(Invoice)
        .join(InvoiceState, InvoiceState.invoice_id == Invoice.id)
        .where(
            Invoice.kind == DocumentKind.INVOICE,
            InvoiceState.status == InvoiceStatus.OPEN,
            Invoice.due_on < today,
        )
        .options(selectinload(Invoice.state))
        .order_by(Invoice.due_on, Invoice.id)
    )
    return paginate(query, page, OVERDUE_PER_PAGE).map(lambda found: _overdue(found, today))


def _overdue(invoices: list[Invoice], today: date) -> list[OverdueInvoice]:
    """Each invoice with its amount due (R-44) and reminders (R-33), read for all at once."""
    dues = invoicing.amounts_due(invoices)
    reminders = reminders_of([i.id for i in invoices])
    return [
        OverdueInvoice(
            invoice=i,
            days_overdue=(today - i.due_on).days,
            amount_due=dues[i.id],
            reminders=reminders[i.id],
            today=today,
        )
        for i in invoices
    ]


def send_reminder(actor: Actor, invoice: Invoice, *, today: date, ip: str) -> PaymentReminder:
    """R-33: record a payment reminder for today and queue its e-mail to the customer.

    One a day per invoice: the database's unique (invoice, day) decides when two staff send
    at once; the state is counted with an UPDATE that also checks the invoice is still open.
    """
    if not can_manage_billing(actor):
        raise NotAllowed(_("Only billing staff send payment reminders."))
    if invoice.kind != DocumentKind.INVOICE:
        raise Conflict(_("A credit note is not paid, so it has no reminders."))
    if invoice.state.status != InvoiceStatus.OPEN:
        raise Conflict(_("This invoice is settled: no reminder is needed."))
    overdue = (today - invoice.due_on).days
    if overdue <= 0:
        raise Conflict(_("This invoice is not overdue yet."))
    reminder = PaymentReminder(
        invoice_id=invoice.id, sent_on=today, days_overdue=overdue, sent_by_id=actor.user.id
    )
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(reminder)
            db.session.flush()
    except IntegrityError:
        raise Conflict(_("A reminder for this invoice was already sent today.")) from None
    counted = db.session.execute(
        sa.update(InvoiceState)
        .where(InvoiceState.invoice_id == invoice.id, InvoiceState.status == InvoiceStatus.OPEN)
        .values(last_reminded_on=today, reminders_sent=InvoiceState.reminders_sent + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        # Paid or credited since it was loaded: the caller rolls the reminder back.
        raise Conflict(_("This invoice is settled: no reminder is needed."))
    db.session.refresh(invoice.state)
    amount_due = invoicing.amount_due(invoice)
    # the reminder (催告) is a notice to the billing address, sent once per reminder.
    organisation = invoice.organisation
    mail.notify_organisation(
        organisation,
        "payment_reminder",
        to=[organisation.billing_email],
        dedupe_key=f"payment_reminder:{reminder.id}",
        context={
            "invoice": invoice,
            "amount_due": amount_due,
            "days_overdue": overdue,
            "bank": invoicing.transfer_account(invoice),  # how to pay
            "issuer": invoicing.provider(),
            "invoice_url": mail.absolute_url("invoices.detail", invoice_id=invoice.id),
        },
    )
    audit.record(
        "invoice.reminder_sent",
        actor=actor,
        organisation_id=invoice.organisation_id,
        subject=invoice,
        ip=ip,
        invoice_number=invoice.number,
        days_overdue=overdue,
        amount_due=amount_due,
    )
    db.session.flush()
    return reminder


# --- the provider's settings (R-40, R-44) -------------------------------------------------------

PROVIDER_FIELDS = (
    "name_ja",
    "name_en",
    "registration_number",
    "address",
    "phone",
    "contact_email",
    "bank_name",
    "bank_branch",
    "bank_account_type",
    "bank_account_number",
    "bank_account_holder_kana",
)
BANK_FIELDS = ("bank_name", "bank_branch", "bank_account_number", "bank_account_holder_kana")


@dataclass(frozen=True)
class ProviderChange:
    field: str
    old: str
    new: str


def change_provider(
    actor: Actor, values: Mapping[str, str], *, ip: str = ""
) -> list[ProviderChange]:
    """Staff administrators change the issuer's settings; each change is on the record with
    its old and new value. Invoices copy them at issue (R-42), so a change reaches only the
    invoices issued after it. Returns the changes (none when nothing differs)."""
    if not can_change_provider_settings(actor):
        raise NotAllowed(_("Only staff administrators change the provider's settings."))
    given = {name: (values.get(name) or "").strip() for name in PROVIDER_FIELDS}
    # an account is printed whole or not at all.
    if any(given[name] for name in BANK_FIELDS):
        for name in BANK_FIELDS:
            if not given[name]:
                raise PortalError(
                    _("Give every detail of the bank account, or none of them."), field=name
                )
    record = invoicing.provider()
    changes = [
        ProviderChange(name, getattr(record, name) or "", given[name])
        for name in PROVIDER_FIELDS
        if (getattr(record, name) or "") != given[name]
    ]
    if not changes:
        return []
    for change in changes:
        setattr(record, change.field, change.new)
    audit.record(
        "provider.settings_changed",
        actor=actor,
        subject=record,
        ip=ip,
        changes={c.field: {"old": c.old, "new": c.new} for c in changes},
    )
    db.session.flush()
    return changes


def provider_history(limit: int = 20) -> list[AuditEvent]:
    """The latest changes of the provider's settings, newest first."""
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "provider.settings_changed")
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )
