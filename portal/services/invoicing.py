"""The monthly run: one invoice per organisation per billing month (R-40..R-42).

`issue_invoices(today)` runs daily. On the first day of a billing month (the 21st) it issues
every organisation's invoice: that month's monthly fees in advance and every pending charge of
the ledger due by then (R-41). On other days it issues the invoice of an organisation that has
none yet this month but has charges due, e.g. a new contract's initial fee on its service start
("the first invoice, at service start", R-11/R-41). Charges that arrive after an
organisation's invoice of the month wait for the next one.

Idempotent and safe to run twice at once: organisations are issued in batches, each batch in
one transaction that first locks the invoice counter (so runs take turns), then skips those
already invoiced this month; numbers come from that counter in the same transaction, so they
have no gaps (R-40); and the database allows one invoice per organisation and month.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.clock import clock
from portal.domain import calendar
from portal.domain import invoices as rules
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractRequest,
    ContractStatus,
    DocumentCounter,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceStatus,
    LedgerCharge,
    Organisation,
    Payment,
    Plan,
    Provider,
    RequestStatus,
    SalesChannel,
    Service,
)
from portal.permissions import Actor, can_issue_credit_notes
from portal.services import audit, claims, mail
from portal.services.errors import NotAllowed, PortalError
from portal.transaction import begin_writing

BATCH_SIZE = 500
NUMBER_PREFIX = {DocumentKind.INVOICE: "INV", DocumentKind.CREDIT_NOTE: "CRN"}

_ONE_DAY = timedelta(days=1)


@dataclass
class IssueSummary:
    billing_month: str
    issued: int = 0
    lines: int = 0
    total: int = 0
    skipped: int = 0  # already invoiced this month (an earlier or concurrent run)
    numbers: list[str] = field(default_factory=list)


def billing_month_for(today: date) -> calendar.BillingMonth:
    """R-02: the billing month whose invoices are issued on or after its first day."""
    return calendar.billing_month_of(today, rules.INVOICE_ANCHOR_DAY)


def document_number(kind: DocumentKind, sequence: int) -> str:
    return f"{NUMBER_PREFIX[kind]}-{sequence:08d}"


def issue_invoices(
    today: date, *, progress: Callable[[str], None] | None = None, batch_size: int = BATCH_SIZE
) -> IssueSummary:
    """Issue what is due on `today` (a Tokyo date, R-01); returns what was issued."""
    month = billing_month_for(today)
    summary = IssueSummary(billing_month=month.name)
    candidates = _organisations_to_invoice(month, today)
    db.session.commit()
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        _issue_batch(batch, month, today, summary)
        if progress:
            done = min(start + batch_size, len(candidates))
            progress(
                f"{month.name}: {done}/{len(candidates)} organisations looked at, "
                f"{summary.issued} invoices issued"
            )
    return summary


def _organisations_to_invoice(month: calendar.BillingMonth, today: date) -> list[int]:
    """Organisations with a fee or a charge due and no invoice yet for this month."""
    already = sa.select(Invoice.organisation_id).where(
        Invoice.kind == DocumentKind.INVOICE, Invoice.billing_month == month.name
    )
    charged = sa.select(LedgerCharge.organisation_id).where(
        LedgerCharge.invoice_id.is_(None), LedgerCharge.bills_on <= today
    )
    wanted = set(db.session.scalars(charged.distinct()))
    if today >= month.start:
        # Every contract running this month might owe its fee; the batch decides exactly.
        running = sa.select(Contract.organisation_id).where(
            Contract.status == ContractStatus.ACTIVE,
            Contract.service_start <= month.start,
        )
        wanted |= set(db.session.scalars(running.distinct()))
    done = set(db.session.scalars(already))
    return sorted(wanted - done)


def _lock_counter(kind: DocumentKind) -> None:
    """Take the counter's row lock first thing in the transaction: runs take turns here."""
    begin_writing()  # SQLite: BEGIN IMMEDIATE, the database's write lock (portal/transaction.py)
    if db.session.get(DocumentCounter, kind) is None:
        try:
            with db.session.begin_nested():  # the first document ever: two runs may race here
                db.session.add(DocumentCounter(kind=kind, last_number=0))
        except IntegrityError:
            pass
    db.session.execute(
        sa.update(DocumentCounter)
        .where(DocumentCounter.kind == kind)
        .values(last_number=DocumentCounter.last_number)
        .execution_options(synchronize_session=False)
    )


def _next_numbers(kind: DocumentKind, count: int) -> range:
    last = db.session.execute(
        sa.update(DocumentCounter)
        .where(DocumentCounter.kind == kind)
        .values(last_number=DocumentCounter.last_number + count)
        .returning(DocumentCounter.last_number)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return range(last - count + 1, last + 1)


def _issue_batch(
    organisation_ids: list[int], month: calendar.BillingMonth, today: date, summary: IssueSummary
) -> None:
    try:
        _lock_counter(DocumentKind.INVOICE)
        done = _already_invoiced(organisation_ids, month)
        todo = [o for o in organisation_ids if o not in done]
        summary.skipped += len(done)
        drafts = _drafts(todo, month, today)
        if not drafts:
            db.session.commit()
            return
        provider = db.session.scalars(sa.select(Provider).limit(1)).one()
        numbers = _next_numbers(DocumentKind.INVOICE, len(drafts))
        charge_updates = _insert_invoices(drafts, numbers, provider, month, today, summary)
        # each ledger charge is carried by exactly one invoice (unique on the line too).
        if charge_updates:
            db.session.execute(sa.update(LedgerCharge), charge_updates)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def _already_invoiced(organisation_ids: list[int], month: calendar.BillingMonth) -> set[int]:
    """Which of the (sorted) organisations have this month's invoice already.

    Asked by id range, not `IN (500 ids)`: PostgreSQL's generic plan for the prepared IN
    query scans the whole month's invoices for each batch (benchmarks/README.md).
    """
    wanted = set(organisation_ids)
    found = db.session.scalars(
        sa.select(Invoice.organisation_id).where(
            Invoice.kind == DocumentKind.INVOICE,
            Invoice.billing_month == month.name,
            Invoice.organisation_id.between(organisation_ids[0], organisation_ids[-1]),
        )
    )
    return {o for o in found if o in wanted}


def _insert_invoices(
    drafts: list[tuple[Organisation, list[rules.Line]]],
    numbers: range,
    provider: Provider,
    month: calendar.BillingMonth,
    today: date,
    summary: IssueSummary,
) -> list[dict[str, int]]:
    """The batch's invoices, lines and states as plain rows in three executemany INSERTs (the
    monthly run's hot path: ORM objects cost twice the time, benchmarks/README.md); returns the
    ledger charges to mark as invoiced."""
    now = clock.now()
    rows, line_lists = [], []
    for (organisation, lines), sequence in zip(drafts, numbers, strict=True):
        row = _invoice_row(
            DocumentKind.INVOICE, sequence, organisation, provider, month, today, lines
        )
        row["created_at"] = now
        rows.append(row)
        line_lists.append(lines)
        summary.issued += 1
        summary.lines += len(lines)
        summary.total += row["total"]
        summary.numbers.append(row["number"])
    db.session.execute(sa.insert(Invoice), rows)
    ids = dict(
        db.session.execute(
            sa.select(Invoice.sequence, Invoice.id).where(
                Invoice.kind == DocumentKind.INVOICE,
                Invoice.sequence.between(numbers[0], numbers[-1]),
            )
        ).all()
    )
    line_rows: list[dict[str, object]] = []
    updates: list[dict[str, int]] = []
    for row, lines in zip(rows, line_lists, strict=True):
        invoice_id = ids[row["sequence"]]
        line_rows.extend(_line_rows(invoice_id, lines))
        claims.record_credits(invoice_id, lines, now)  # each credit carried once
        updates.extend(
            {"id": line.ledger_charge_id, "invoice_id": invoice_id}
            for line in lines
            if line.ledger_charge_id is not None
        )
    db.session.execute(sa.insert(InvoiceLine), line_rows)
    db.session.execute(sa.insert(InvoiceState), [{"invoice_id": i} for i in ids.values()])
    return updates


def _line_rows(invoice_id: int, lines: list[rules.Line]) -> list[dict[str, object]]:
    return [
        {
            "invoice_id": invoice_id,
            "position": position,
            "kind": line.kind,
            "contract_id": line.contract_id,
            "description_ja": line.description_ja,
            "description_en": line.description_en,
            "amount": line.amount,
            "tax_rate_percent": line.tax_rate_percent,
            "ledger_charge_id": line.ledger_charge_id,
            "details": line.details,
        }
        for position, line in enumerate(lines, start=1)
    ]


def _drafts(
    organisation_ids: list[int], month: calendar.BillingMonth, today: date
) -> list[tuple[Organisation, list[rules.Line]]]:
    """The lines each organisation's invoice will carry; organisations owing nothing drop out."""
    if not organisation_ids:
        return []
    organisations = {
        o.id: o
        for o in db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(organisation_ids))
        )
    }
    lines: dict[int, list[rules.Line]] = defaultdict(list)
    if today >= month.start:
        contracts, pending = _running_contracts(organisation_ids)
        for contract in contracts:
            line = _monthly_fee(contract, month, _last_day(contract, pending.get(contract.id)))
            if line is not None:
                lines[contract.organisation_id].append(line)
    charges = db.session.scalars(
        sa.select(LedgerCharge)
        .where(
            LedgerCharge.organisation_id.in_(organisation_ids),
            LedgerCharge.invoice_id.is_(None),
            LedgerCharge.bills_on <= today,
        )
        .order_by(LedgerCharge.bills_on, LedgerCharge.id)
    )
    for charge in charges:
        lines[charge.organisation_id].append(_charge_line(charge))
    # approved SLA claims are deducted from the next invoice, never below zero.
    charged = [o for o in organisation_ids if lines.get(o)]
    for organisation_id, credits in claims.credit_lines(charged, lines).items():
        lines[organisation_id].extend(credits)
    return [(organisations[o], lines[o]) for o in organisation_ids if lines.get(o)]


Pending = tuple[RequestKind, date]


@dataclass(frozen=True)
class _RunningContract:
    """What the run needs of a contract, read as one row (not ORM objects: 100,000 of them)."""

    id: int
    organisation_id: int
    monthly_fee: int
    service_start: date
    anchor_day: int
    sales_channel: SalesChannel
    agency_periods_granted: int | None
    tax_rate_percent: int
    plan_name_ja: str
    plan_name_en: str
    paid: bool


def _running_contracts(
    organisation_ids: list[int],
) -> tuple[list[_RunningContract], dict[int, Pending]]:
    """The active contracts of the organisations, with each one's pending request if any."""
    contracts = [
        _RunningContract(*row)
        for row in db.session.execute(
            sa.select(
                Contract.id,
                Contract.organisation_id,
                Contract.monthly_fee,
                Contract.service_start,
                Contract.anchor_day,
                Contract.sales_channel,
                Contract.agency_periods_granted,
                Plan.tax_rate_percent,
                Plan.name_ja,
                Plan.name_en,
                Service.paid,
            )
            .join(Plan, Plan.id == Contract.plan_id)
            .join(Service, Service.id == Contract.service_id)
            .where(
                Contract.organisation_id.in_(organisation_ids),
                Contract.status == ContractStatus.ACTIVE,
            )
            .order_by(Contract.organisation_id, Contract.id)
        )
    ]
    rows = db.session.execute(
        sa.select(ContractRequest.contract_id, ContractRequest.kind, ContractRequest.effective_on)
        .join(Contract, Contract.id == ContractRequest.contract_id)
        .where(
            Contract.organisation_id.in_(organisation_ids),
            ContractRequest.status == RequestStatus.PENDING,
        )
    ).all()
    return contracts, {c: (RequestKind(k), on) for c, k, on in rows}


def _last_day(contract: _RunningContract, pending: Pending | None) -> date | None:
    """The last day the contract runs as things stand: a pending request that ends it sets
    it (R-05, R-22, R-30); an agency contract runs to its last granted period, one more with
    a pending renewal application (R-06)."""
    if pending and pending[0].ends_contract:
        return pending[1]
    if contract.sales_channel == SalesChannel.AGENCY:
        anchor = calendar.term_anchor(contract.service_start, contract.anchor_day)
        granted = (contract.agency_periods_granted or 1) + (
            1 if pending and pending[0] == RequestKind.AGENCY_RENEWAL else 0
        )
        return calendar.agency_period(anchor, granted - 1).end
    return None


def _monthly_fee(
    contract: _RunningContract, month: calendar.BillingMonth, last_day: date | None
) -> rules.Line | None:
    """R-41: the contract's fee for this billing month, in advance, if it owes one."""
    if not contract.paid:
        return None
    own_month = calendar.billing_month_named(month.year, month.month, contract.anchor_day)
    anchor = calendar.term_anchor(contract.service_start, contract.anchor_day)
    if not rules.owes_monthly_fee(term_anchor=anchor, last_day=last_day, month=own_month):
        return None
    name_ja, name_en = rules.CHARGE_NAMES["monthly_fee"]
    period_ja, period_en = rules.period_text(own_month)
    return rules.Line(
        kind="monthly_fee",
        amount=contract.monthly_fee,
        tax_rate_percent=contract.tax_rate_percent,
        description_ja=f"{name_ja} {period_ja} 契約番号{contract.id} {contract.plan_name_ja}",
        description_en=(
            f"{name_en}, {period_en}, contract no. {contract.id}, {contract.plan_name_en}"
        ),
        contract_id=contract.id,
        details={"billing_month": own_month.name},
    )


def _charge_line(charge: LedgerCharge) -> rules.Line:
    name_ja, name_en = rules.CHARGE_NAMES[charge.kind.value]
    if charge.months:
        name_ja += f"（{charge.months}か月度分）"
        name_en += f" ({charge.months} billing month{'s' if charge.months != 1 else ''})"
    return rules.Line(
        kind=charge.kind.value,
        amount=charge.amount,
        tax_rate_percent=charge.tax_rate_percent,
        description_ja=f"{name_ja} 契約番号{charge.contract_id}",
        description_en=f"{name_en}, contract no. {charge.contract_id}",
        contract_id=charge.contract_id,
        ledger_charge_id=charge.id,
        details={"accrued_on": charge.accrued_on.isoformat(), "request_id": charge.request_id},
    )


def due_date(month: calendar.BillingMonth) -> date:
    """Payment is due by the last day of the billing month billed in advance."""
    return month.end


def _invoice_row(
    kind: DocumentKind,
    sequence: int,
    organisation: Organisation,
    provider: Provider,
    month: calendar.BillingMonth,
    today: date,
    lines: list[rules.Line],
    *,
    original: Invoice | None = None,
    reason: str = "",
    created_by_id: int | None = None,
) -> dict[str, object]:
    """A document with everything R-40 asks for, frozen as it is today (R-42, R-62)."""
    sums = rules.totals(lines)
    locale = organisation.locale if organisation.locale in ("ja", "en") else "ja"
    return {
        "kind": kind,
        "sequence": sequence,
        "number": document_number(kind, sequence),
        "organisation_id": organisation.id,
        "billing_month": month.name,
        "period_start": month.start,
        "period_end": month.end,
        "issued_on": today,
        "due_on": due_date(month) if kind == DocumentKind.INVOICE else today,
        "locale": locale,
        "recipient_name": organisation.legal_name,
        "recipient_postal_code": organisation.postal_code,
        "recipient_address": organisation.address,
        "provider_name": provider.name(locale),
        "provider_registration_number": provider.registration_number,
        "provider_address": provider.address,
        "provider_phone": provider.phone,
        "provider_bank": provider.bank_account(),  # how to pay, as it is today
        "subtotal": sums.subtotal,
        "tax_total": sums.tax_total,
        "total": sums.total,
        "tax_summary": sums.tax_summary(),
        "original_invoice_id": original.id if original else None,
        "reason": reason,
        "created_by_id": created_by_id,
    }


# --- the PDF, rendered once (R-42) ------------------------------------------------------------

# Documents a rendering run claims at a time: their rows stay locked, and their PDFs and
# e-mails uncommitted, while they render (a quarter to half a second at 10-20 ms each).
PDF_BATCH = 25


def pdf_of(invoice: Invoice) -> bytes:
    """The stored PDF; rendered and stored the first time it is asked for, never again."""
    stored = db.session.execute(
        sa.select(Invoice.pdf, Invoice.pdf_sha256).where(Invoice.id == invoice.id)
    ).one()
    if stored.pdf_sha256 is not None:
        return stored.pdf
    pdf = _render(invoice)
    if _store(invoice, pdf):
        # Its own transaction on purpose: a stored PDF (and its e-mail) must not wait for, or
        # be rolled back with, whatever else the caller does; the row is frozen from here on.
        db.session.commit()
        return pdf
    # A rendering run (or another download) stored it first: serve what is stored, byte for
    # byte (its lock, if it held one, went with its commit).
    db.session.commit()
    return db.session.execute(sa.select(Invoice.pdf).where(Invoice.id == invoice.id)).scalar_one()


def _render(invoice: Invoice) -> bytes:
    from portal.documents.invoices import invoice_document, render_invoice_pdf

    return render_invoice_pdf(invoice_document(invoice))


def _store(
    invoice: Invoice, pdf: bytes, *, due: int | None = None, issuer: Provider | None = None
) -> bool:
    """Store `pdf` as the document's PDF and announce it, in the caller's transaction; False
    when the document has a PDF already (stored by someone else: nothing is done)."""
    # the PDF and its hash in one statement, only while there is none (the database
    # refuses anything else: migration 0008); the rowcount says who stored it. The final guard
    # whatever claimed the row: two renderers that meet here store one PDF.
    stored = db.session.execute(
        sa.update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.pdf.is_(None), Invoice.pdf_sha256.is_(None))
        .values(pdf=pdf, pdf_sha256=hashlib.sha256(pdf).hexdigest())
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _announce(invoice, due=due, issuer=issuer)
    return True


def _announce(invoice: Invoice, *, due: int | None = None, issuer: Provider | None = None) -> None:
    """R-61: the document is ready; the billing address is told once (the key guarantees it).
    A rendering run passes the amount due and the issuer it read once for its whole batch."""
    organisation = invoice.organisation
    issuer = issuer or provider()
    bank = None
    if invoice.kind == DocumentKind.INVOICE:  # as transfer_account() says
        bank = invoice.provider_bank or issuer.bank_account() or None
    mail.notify_organisation(
        organisation,
        "invoice_issued",
        to=[organisation.billing_email],
        dedupe_key=f"invoice_issued:{invoice.id}",
        context={
            "invoice": invoice,
            "amount_due": amount_due(invoice) if due is None else due,
            "bank": bank,  # how to pay
            "issuer": issuer,
            "invoice_url": mail.absolute_url("invoices.detail", invoice_id=invoice.id),
        },
    )


def render_pending_pdfs(
    *,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
    batch: int = PDF_BATCH,
    committed: Callable[[int], None] | None = None,
) -> int:
    """Render and store the PDF of every issued document that has none yet (R-42); the count
    is of the PDFs this call stored. Safe to run in several processes and on several servers
    at once (`flask portal render-invoices` runs one per core): each batch of documents is
    claimed, rendered, stored and committed in one short transaction (`_claim`), so no two
    runs render the same document, and a run that dies leaves its batch to the others (its
    locks go with its transaction). `committed` is told the count of each batch committed.

    A run goes through the documents in id order from where its last batch ended, skipping
    those another run holds; when it finds none, it looks once more from the start (for a
    batch left by a run that died, or passed while another run held it) and stops when that
    finds none either."""
    db.session.commit()  # each batch in a transaction of its own
    rendered = 0
    after = 0
    while limit is None or rendered < limit:
        claimed = _claim(after, batch if limit is None else min(batch, limit - rendered))
        if not claimed:
            db.session.commit()
            if after == 0:
                break
            after = 0
            continue
        after = claimed[-1].id
        dues = amounts_due(claimed)
        issuer = provider()
        stored = sum(
            _store(invoice, _render(invoice), due=dues[invoice.id], issuer=issuer)
            for invoice in claimed
        )
        db.session.commit()  # the batch's PDFs, hashes and e-mails; the locks go
        before, rendered = rendered, rendered + stored
        if committed:
            committed(stored)
        if progress and rendered // 500 > before // 500:
            progress(f"{rendered} PDFs rendered")
    return rendered


def _claim(after: int, size: int) -> list[Invoice]:
    """Up to `size` documents without a PDF, with ids above `after`, held by this transaction
    until it ends. PostgreSQL: FOR NO KEY UPDATE SKIP LOCKED: rows another run holds are
    passed over, not waited for (NO KEY: a payment's foreign key check on the invoice, which
    takes KEY SHARE, is not held up). The row is checked again once locked, so a document that
    got its PDF meanwhile is not claimed. SQLite has no row locks: the batch takes the
    database's write lock (BEGIN IMMEDIATE) and concurrent runs take turns."""
    begin_writing()
    return list(
        db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.pdf_sha256.is_(None), Invoice.id > after)
            .order_by(Invoice.id)
            .limit(size)
            .with_for_update(skip_locked=True, key_share=True)
            .options(
                selectinload(Invoice.lines),
                selectinload(Invoice.original),
                selectinload(Invoice.organisation),
            )
        )
    )


def verify_pdf(invoice: Invoice) -> bool:
    """Whether the stored PDF still matches its SHA-256 (R-42)."""
    row = db.session.execute(
        sa.select(Invoice.pdf, Invoice.pdf_sha256).where(Invoice.id == invoice.id)
    ).one()
    return row.pdf is not None and hashlib.sha256(row.pdf).hexdigest() == row.pdf_sha256


# --- what is due (R-44) ---------------------------------------------------------------------


def amounts_due(documents: Iterable[Invoice]) -> dict[int, int]:
    """R-44: the amount due of each document, by id: an invoice's total less its credit notes
    and less its payments, never below zero (money received beyond it is a refund to make,
    not a debt); a credit note owes nothing. The one place that says what is due: pages,
    Pay buttons, card payments, reminders and the overdue list all ask here."""
    documents = list(documents)
    ids = [d.id for d in documents if d.kind == DocumentKind.INVOICE]
    credited = _sums(
        sa.select(Invoice.original_invoice_id, sa.func.sum(Invoice.total))
        .where(Invoice.kind == DocumentKind.CREDIT_NOTE, Invoice.original_invoice_id.in_(ids))
        .group_by(Invoice.original_invoice_id),
        ids,
    )
    paid = _sums(
        sa.select(Payment.invoice_id, sa.func.sum(Payment.amount))
        .where(Payment.invoice_id.in_(ids))
        .group_by(Payment.invoice_id),
        ids,
    )
    return {
        d.id: max(0, d.total - credited.get(d.id, 0) - paid.get(d.id, 0))
        if d.kind == DocumentKind.INVOICE
        else 0
        for d in documents
    }


def _sums(query: sa.Select, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return {key: int(total or 0) for key, total in db.session.execute(query)}


def amount_due(invoice: Invoice) -> int:
    """R-44: what the customer owes on one invoice (see amounts_due)."""
    return amounts_due([invoice])[invoice.id]


@dataclass(frozen=True)
class Outstanding:
    """What an organisation owes: its open invoices' amounts due, and those past due."""

    total: int
    count: int
    overdue_total: int
    overdue_count: int


def outstanding(documents: Iterable[Invoice], dues: dict[int, int], today: date) -> Outstanding:
    """R-44: the sum of the amounts due of the open invoices among `documents`."""
    open_ = [
        d
        for d in documents
        if d.kind == DocumentKind.INVOICE
        and d.state.status == InvoiceStatus.OPEN
        and dues.get(d.id, 0) > 0
    ]
    late = [d for d in open_ if d.due_on < today]
    return Outstanding(
        total=sum(dues[d.id] for d in open_),
        count=len(open_),
        overdue_total=sum(dues[d.id] for d in late),
        overdue_count=len(late),
    )


def provider() -> Provider:
    """The issuer (one row)."""
    return db.session.scalars(sa.select(Provider).order_by(Provider.id).limit(1)).one()


def transfer_account(invoice: Invoice) -> dict[str, str] | None:
    """R-44: the account to pay an invoice into by bank transfer: the one it was issued with;
    for an invoice issued before the portal kept it (or when none was set), the provider's
    account today, so that every invoice names how to pay."""
    if invoice.kind != DocumentKind.INVOICE:
        return None
    return invoice.provider_bank or provider().bank_account() or None


# --- credit notes (適格返還請求書, R-42) -------------------------------------------------------


def credited_so_far(original: Invoice) -> int:
    """The total (tax included) already returned on an invoice by its credit notes."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Invoice.total), 0)).where(
                Invoice.kind == DocumentKind.CREDIT_NOTE,
                Invoice.original_invoice_id == original.id,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class CreditNotePreview:
    """A credit note as it would be issued now: its line, totals, and what is left."""

    original: Invoice
    line: rules.Line
    sums: rules.Totals
    remaining: int  # left to credit on the original before this note, tax included
    amount_due_after: int  # what is left to pay on the original after this note


def check_credit_note(
    actor: Actor, original: Invoice, *, amount: int, tax_rate_percent: int, reason: str
) -> CreditNotePreview:
    """Every check of issue_credit_note, and the note it would issue; writes nothing (the
    confirmation step shows it before the note is issued for good)."""
    if not can_issue_credit_notes(actor):
        raise NotAllowed(_("Only billing staff issue credit notes."))
    if original.kind != DocumentKind.INVOICE:
        raise PortalError(_("A credit note corrects an invoice."), field="amount")
    reason = reason.strip()
    if not 5 <= len(reason) <= 1000:
        raise PortalError(_("Give the reason in 5 to 1000 characters."), field="reason")
    rates = {row["rate_percent"] for row in original.tax_summary}
    if tax_rate_percent not in rates:
        raise PortalError(_("Use a tax rate of the original invoice."), field="tax_rate_percent")
    if amount <= 0:
        raise PortalError(_("Enter an amount above zero, in whole yen."), field="amount")
    line = rules.Line(
        kind="credit",
        amount=amount,
        tax_rate_percent=tax_rate_percent,
        description_ja=f"返還（{original.number}）{reason}",
        description_en=f"Credit ({original.number}): {reason}",
        details={"original": original.number},
    )
    sums = rules.totals([line])
    remaining = original.total - credited_so_far(original)
    if sums.total > remaining:
        raise PortalError(
            _("At most %(amount)s (tax included) is left to credit.", amount=f"¥{remaining:,}"),
            field="amount",
        )
    return CreditNotePreview(
        original=original,
        line=line,
        sums=sums,
        remaining=remaining,
        amount_due_after=max(0, amount_due(original) - sums.total),
    )


def issue_credit_note(
    actor: Actor, original: Invoice, *, amount: int, tax_rate_percent: int, reason: str, ip: str
) -> Invoice:
    """R-42: a correction or refund is a new document referencing the original, never an edit.

    `amount` is tax excluded, at one of the original's tax rates; the credit note's total with
    its tax may not exceed what is left uncredited on the original.
    """
    check_credit_note(
        actor, original, amount=amount, tax_rate_percent=tax_rate_percent, reason=reason
    )
    reason = reason.strip()
    _lock_counter(DocumentKind.CREDIT_NOTE)
    # Checked again under the counter's lock: another note may have been issued meanwhile.
    preview = check_credit_note(
        actor, original, amount=amount, tax_rate_percent=tax_rate_percent, reason=reason
    )
    line, sums, remaining = preview.line, preview.sums, preview.remaining
    (sequence,) = _next_numbers(DocumentKind.CREDIT_NOTE, 1)
    organisation = db.session.get_one(Organisation, original.organisation_id)
    month = calendar.billing_month_of(original.period_start, rules.INVOICE_ANCHOR_DAY)
    note = Invoice(
        **_invoice_row(
            DocumentKind.CREDIT_NOTE,
            sequence,
            organisation,
            provider(),
            month,
            clock.today(),
            [line],
            original=original,
            reason=reason,
            created_by_id=actor.user.id,
        )
    )
    note.lines = [
        InvoiceLine(**{k: v for k, v in row.items() if k != "invoice_id"})
        for row in _line_rows(0, [line])
    ]
    note.state = InvoiceState()
    db.session.add(note)
    db.session.flush()
    if sums.total == remaining:
        # Fully credited: nothing is left to pay on the original.
        db.session.execute(
            sa.update(InvoiceState)
            .where(InvoiceState.invoice_id == original.id, InvoiceState.status == "open")
            .values(status=InvoiceStatus.CREDITED)
            .execution_options(synchronize_session=False)
        )
    audit.record(
        "invoice.credit_note_issued",
        actor=actor,
        organisation_id=original.organisation_id,
        subject=note,
        ip=ip,
        original=original.number,
        total=note.total,
    )
    return note


# --- reading ------------------------------------------------------------------------------------


def documents_of(organisation: Organisation) -> list[Invoice]:
    """An organisation's invoices and credit notes, newest first, with their state."""
    return list(
        db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.organisation_id == organisation.id)
            .options(selectinload(Invoice.state), selectinload(Invoice.original))
            .order_by(Invoice.issued_on.desc(), Invoice.id.desc())
        )
    )


def payment_of(invoice: Invoice) -> Payment | None:
    """R-43: how an invoice was paid (one payment settles it), if it was."""
    return db.session.scalar(sa.select(Payment).where(Payment.invoice_id == invoice.id))


def credit_notes_of(invoice: Invoice) -> list[Invoice]:
    return list(
        db.session.scalars(
            sa.select(Invoice).where(Invoice.original_invoice_id == invoice.id).order_by(Invoice.id)
        )
    )


def days_overdue(invoice: Invoice, today: date) -> int:
    """R-33: days past the due date of an open invoice (0 when not overdue)."""
    if invoice.kind != DocumentKind.INVOICE or invoice.state.status != InvoiceStatus.OPEN:
        return 0
    return max(0, (today - invoice.due_on).days)


def is_payable(invoice: Invoice, due: int) -> bool:
    """An open invoice with an amount due (R-44) can be paid."""
    return (
        invoice.kind == DocumentKind.INVOICE
        and invoice.state.status == InvoiceStatus.OPEN
        and due > 0
    )


def stored_sha256(invoice: Invoice) -> str:
    return (
        db.session.execute(
            sa.select(Invoice.pdf_sha256).where(Invoice.id == invoice.id)
        ).scalar_one()
        or ""
    )
