"""Experiment: the invoice run with the changes proposed for it, patched in for measuring only.

    .venv/bin/python benchmarks/issue_variants.py VARIANT [--organisations N] [--contracts N]

VARIANT is `base` (the code as it is) or a "+"-joined list of:

- `range`: the per-batch "already invoiced" query by organisation id range instead of
  `organisation_id IN (500 parameters)` (see `_done_by_range`);
- `core`: the invoices, lines and states of a batch inserted with executemany (no ORM
  objects, no RETURNING) instead of ORM objects and `flush()` (see `_issue_batch`);
- `drafts`: the running contracts read as column rows instead of ORM Contract/Plan/Service
  objects (see `_drafts_rows`);
- `noprepare`: psycopg's automatic server-side prepared statements off
  (`connect_args={"prepare_threshold": None}`), the one-line alternative to `range`.

The code under test is not changed: these functions replace `invoicing._issue_batch` and
`invoicing._drafts` in this process only. Each run builds the same data as invoice_run.py (same
seed), times one `issue_invoices()` and checks what it issued: invoices, lines, total and the
ledger charges billed must be the same for every variant. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from datetime import date
from types import SimpleNamespace

import invoice_run as bench  # benchmarks/ is sys.path[0] when run as a script
import sqlalchemy as sa

from portal.clock import clock
from portal.domain import invoices as rules
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractRequest,
    ContractStatus,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceState,
    LedgerCharge,
    Organisation,
    Plan,
    Provider,
    RequestStatus,
    Service,
)
from portal.services import invoicing

VARIANTS = {"range", "core", "drafts", "noprepare"}
_done_seconds = [0.0]


def _done_in(organisation_ids, month):
    """As the code is: `organisation_id IN (...)` with one bound parameter per id."""
    return set(
        db.session.scalars(
            sa.select(Invoice.organisation_id).where(
                Invoice.kind == DocumentKind.INVOICE,
                Invoice.billing_month == month.name,
                Invoice.organisation_id.in_(organisation_ids),
            )
        )
    )


def _done_by_range(organisation_ids, month):
    """The batch's ids are sorted: two parameters, an index range scan on
    uq_invoices_one_per_month, whatever plan PostgreSQL caches for the prepared statement."""
    wanted = set(organisation_ids)
    rows = db.session.scalars(
        sa.select(Invoice.organisation_id).where(
            Invoice.kind == DocumentKind.INVOICE,
            Invoice.billing_month == month.name,
            Invoice.organisation_id.between(organisation_ids[0], organisation_ids[-1]),
        )
    )
    return {o for o in rows if o in wanted}


def _drafts_rows(organisation_ids, month, today):
    """`invoicing._drafts` reading the contracts as rows (same lines, same order)."""
    if not organisation_ids:
        return []
    organisations = {
        o.id: o
        for o in db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(organisation_ids))
        )
    }
    lines = defaultdict(list)
    if today >= month.start:
        rows = db.session.execute(
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
        ).all()
        pending = {
            c: (RequestKind(k), on)
            for c, k, on in db.session.execute(
                sa.select(
                    ContractRequest.contract_id, ContractRequest.kind, ContractRequest.effective_on
                )
                .join(Contract, Contract.id == ContractRequest.contract_id)
                .where(
                    Contract.organisation_id.in_(organisation_ids),
                    ContractRequest.status == RequestStatus.PENDING,
                )
            )
        }
        for r in rows:
            contract = SimpleNamespace(
                id=r.id,
                organisation_id=r.organisation_id,
                monthly_fee=r.monthly_fee,
                service_start=r.service_start,
                anchor_day=r.anchor_day,
                sales_channel=r.sales_channel,
                agency_periods_granted=r.agency_periods_granted,
                plan=SimpleNamespace(
                    tax_rate_percent=r.tax_rate_percent, name_ja=r.name_ja, name_en=r.name_en
                ),
                service=SimpleNamespace(paid=r.paid),
            )
            last_day = invoicing._last_day(contract, pending.get(r.id))
            line = invoicing._monthly_fee(contract, month, last_day)
            if line is not None:
                lines[r.organisation_id].append(line)
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
        lines[charge.organisation_id].append(invoicing._charge_line(charge))
    return [(organisations[o], lines[o]) for o in organisation_ids if lines.get(o)]


def _make_issue_batch(done_query, core: bool):
    def issue_batch(organisation_ids, month, today, summary):
        try:
            invoicing._lock_counter(DocumentKind.INVOICE)
            started = time.perf_counter()
            done = done_query(organisation_ids, month)
            _done_seconds[0] += time.perf_counter() - started
            todo = [o for o in organisation_ids if o not in done]
            summary.skipped += len(done)
            drafts = invoicing._drafts(todo, month, today)
            if not drafts:
                db.session.commit()
                return
            provider = db.session.scalars(sa.select(Provider).limit(1)).one()
            numbers = invoicing._next_numbers(DocumentKind.INVOICE, len(drafts))
            if core:
                updates = _insert_core(drafts, numbers, provider, month, today, summary)
            else:
                updates = _insert_orm(drafts, numbers, provider, month, today, summary)
            if updates:
                db.session.execute(sa.update(LedgerCharge), updates)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise

    return issue_batch


def _insert_orm(drafts, numbers, provider, month, today, summary):
    """As the code is: ORM objects, flush (INSERT ... RETURNING through insertmanyvalues)."""
    issued = []
    for (organisation, lines), sequence in zip(drafts, numbers, strict=True):
        invoice = invoicing._invoice(
            DocumentKind.INVOICE, sequence, organisation, provider, month, today, lines
        )
        db.session.add(invoice)
        issued.append(invoice)
        summary.issued += 1
        summary.lines += len(lines)
        summary.total += invoice.total
        summary.numbers.append(invoice.number)
    db.session.flush()
    return [
        {"id": line.ledger_charge_id, "invoice_id": invoice.id}
        for invoice in issued
        for line in invoice.lines
        if line.ledger_charge_id is not None
    ]


def _insert_core(drafts, numbers, provider, month, today, summary):
    """The same rows as plain dicts, inserted with executemany and no RETURNING (psycopg 3
    sends those in one pipeline); the new ids read back by the batch's sequence range."""
    now = clock.now()
    rows, line_lists = [], []
    for (organisation, lines), sequence in zip(drafts, numbers, strict=True):
        sums = rules.totals(lines)
        locale = organisation.locale if organisation.locale in ("ja", "en") else "ja"
        rows.append(
            {
                "kind": DocumentKind.INVOICE,
                "sequence": sequence,
                "number": invoicing.document_number(DocumentKind.INVOICE, sequence),
                "organisation_id": organisation.id,
                "billing_month": month.name,
                "period_start": month.start,
                "period_end": month.end,
                "issued_on": today,
                "due_on": invoicing.due_date(month),
                "locale": locale,
                "recipient_name": organisation.legal_name,
                "recipient_postal_code": organisation.postal_code,
                "recipient_address": organisation.address,
                "provider_name": provider.name(locale),
                "provider_registration_number": provider.registration_number,
                "provider_address": provider.address,
                "subtotal": sums.subtotal,
                "tax_total": sums.tax_total,
                "total": sums.total,
                "tax_summary": sums.tax_summary(),
                "original_invoice_id": None,
                "reason": "",
                "created_at": now,
                "created_by_id": None,
            }
        )
        line_lists.append(lines)
        summary.issued += 1
        summary.lines += len(lines)
        summary.total += sums.total
        summary.numbers.append(rows[-1]["number"])
    db.session.execute(sa.insert(Invoice), rows)
    ids = dict(
        db.session.execute(
            sa.select(Invoice.sequence, Invoice.id).where(
                Invoice.kind == DocumentKind.INVOICE,
                Invoice.sequence.between(numbers[0], numbers[-1]),
            )
        ).all()
    )
    line_rows, updates = [], []
    for row, lines in zip(rows, line_lists, strict=True):
        invoice_id = ids[row["sequence"]]
        for position, line in enumerate(lines, start=1):
            line_rows.append(
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
            )
            if line.ledger_charge_id is not None:
                updates.append({"id": line.ledger_charge_id, "invoice_id": invoice_id})
    db.session.execute(sa.insert(InvoiceLine), line_rows)
    db.session.execute(sa.insert(InvoiceState), [{"invoice_id": i} for i in ids.values()])
    return updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant")
    parser.add_argument("--database-url", default=bench.DEFAULT_URL)
    parser.add_argument("--organisations", type=int, default=20_000)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--run-date", type=date.fromisoformat, default=date(2027, 4, 21))
    parser.add_argument("--seed", type=int, default=20270421)
    args = parser.parse_args()
    flags = set() if args.variant == "base" else set(args.variant.split("+"))
    if flags - VARIANTS:
        parser.error(f"unknown variant(s): {', '.join(sorted(flags - VARIANTS))}")
    if "bench" not in (sa.engine.make_url(bench.libpq_url(args.database_url)).database or ""):
        parser.error("use a database whose name contains 'bench': it is dropped and recreated")

    url = bench.database_url(args.database_url)
    bench.recreate_database(url)
    bench.migrate(url)
    bench.fill(url, bench.Dataset(args.organisations, args.contracts, args.run_date, args.seed))
    config = {**bench.APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url}
    if "noprepare" in flags:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            "connect_args": {"prepare_threshold": None},
        }
    app = bench.create_app(config)
    invoicing._issue_batch = _make_issue_batch(
        _done_by_range if "range" in flags else _done_in, core="core" in flags
    )
    if "drafts" in flags:
        invoicing._drafts = _drafts_rows
    clock.set(bench.tokyo_instant(args.run_date, 10))
    try:
        with app.app_context():
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.process_time()
            summary = invoicing.issue_invoices(args.run_date)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            second = invoicing.issue_invoices(args.run_date)
            lines = db.session.scalar(sa.select(sa.func.count()).select_from(InvoiceLine))
            billed = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerCharge)
                .where(LedgerCharge.invoice_id.is_not(None))
            )
            print(
                f"{args.variant:24s} {wall:6.2f} s ({cpu:5.1f} s CPU; done-query "
                f"{_done_seconds[0]:5.2f} s): {summary.issued} invoices, {summary.lines} lines "
                f"({lines} stored), ¥{summary.total:,}, {billed} charges billed, second run "
                f"{second.issued}; load {load:.2f} -> {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            db.session.remove()
            db.engine.dispose()
    finally:
        clock.set(None)
        bench.drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
