"""The daily run: carry out what is due (R-05, R-06, R-21..R-23, R-30, R-31).

`apply_due(today)` is safe to run twice, or twice at once: each request is claimed by a
conditional UPDATE (pending -> applied) in its own transaction, so only one run carries it
out, and the ledger's unique indexes refuse a second charge for the same request anyway.
Renewal and expiry events are unique per contract, kind and day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError

from portal.clock import clock
from portal.domain import calendar
from portal.domain.quotes import Charge, ChargeKind, Quote, RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractEvent,
    ContractRequest,
    ContractStatus,
    LedgerCharge,
    Plan,
    RequestStatus,
    SalesChannel,
)
from portal.services import audit, mail
from portal.transaction import begin_writing

_ONE_DAY = timedelta(days=1)


@dataclass
class RunSummary:
    applied: dict[str, int] = field(default_factory=dict)
    renewals: int = 0
    agency_expired: int = 0
    skipped: int = 0  # claimed by another run at the same time

    def count(self, kind: str) -> None:
        self.applied[kind] = self.applied.get(kind, 0) + 1


def apply_due(today: date, progress: Callable[[str], None] | None = None) -> RunSummary:
    """Apply every pending request due on or before `today`, then renewals and expiries."""
    summary = RunSummary()
    due = list(
        db.session.scalars(
            sa.select(ContractRequest.id)
            .where(
                ContractRequest.status == RequestStatus.PENDING,
                ContractRequest.applies_on <= today,
            )
            .order_by(ContractRequest.applies_on, ContractRequest.id)
        )
    )
    db.session.commit()
    for request_id in due:
        kind = _apply_one(request_id)
        if kind is None:
            summary.skipped += 1
        else:
            summary.count(kind)
        if progress:
            progress(f"request {request_id}: {kind or 'already applied or withdrawn'}")
    summary.renewals = record_renewals(today)
    summary.agency_expired = expire_agency_contracts(today)
    return summary


def _apply_one(request_id: int) -> str | None:
    """Claim and carry out one request in its own transaction; None if another run did."""
    now = clock.now()
    try:
        claimed = db.session.execute(
            sa.update(ContractRequest)
            .where(
                ContractRequest.id == request_id,
                ContractRequest.status == RequestStatus.PENDING,
            )
            .values(status=RequestStatus.APPLIED, applied_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            return None
        request = db.session.get_one(ContractRequest, request_id)
        db.session.refresh(request)
        _carry_out(request)
        _announce_applied(request)
        audit.record(
            "request.applied",
            organisation_id=request.organisation_id,
            subject=request,
            contract_id=request.contract_id,
            kind=request.kind.value,
        )
        db.session.commit()
    except IntegrityError:
        # A concurrent run wrote the same ledger lines or events first.
        db.session.rollback()
        return None
    except Exception:
        db.session.rollback()
        raise
    return request.kind.value


def _carry_out(request: ContractRequest) -> None:
    contract = request.contract
    quote = request.confirmed_quote()
    if request.kind == RequestKind.UPGRADE:
        # the larger plan from the effective date; its fee from the next billing month,
        # which is also the first invoice issued after this day. Minimum term unchanged.
        plan = db.session.get_one(Plan, request.target_plan_id)
        old_plan_id, old_fee = contract.plan_id, contract.monthly_fee
        contract.plan = plan
        contract.monthly_fee = quote.new_monthly_fee or plan.monthly_fee
        fee_from = quote.new_fee_from or quote.invoice_month
        assert fee_from is not None, "an upgrade's quote names the month of its new fee"
        # The fee history: what the SLA takes as F in each billing month.
        _event(
            contract,
            "plan_changed",
            request.effective_on,
            request,
            from_plan_id=old_plan_id,
            monthly_fee_before=old_fee,
            monthly_fee=contract.monthly_fee,
            fee_from=fee_from.start.isoformat(),
        )
        _ledger(request, quote, contract, None)
    elif request.kind in (RequestKind.CANCELLATION, RequestKind.NON_RENEWAL):
        _end(contract, request.effective_on, request)
        _ledger(request, quote, contract, None)
    elif request.kind == RequestKind.DOWNGRADE:
        # the old contract ends at the month end; the lower plan starts the next day as a
        # new application with its own initial fee and minimum term.
        _end(contract, request.effective_on, request)
        plan = db.session.get_one(Plan, request.target_plan_id)
        new = Contract(
            organisation_id=contract.organisation_id,
            service_id=contract.service_id,
            plan=plan,
            monthly_fee=quote.new_monthly_fee or plan.monthly_fee,
            minimum_months=quote.new_minimum_months or plan.minimum_months,
            service_start=request.effective_on + _ONE_DAY,
            anchor_day=contract.anchor_day,
            sales_channel=contract.sales_channel,
            partner_id=contract.partner_id,
            agency_periods_granted=1 if contract.sales_channel == SalesChannel.AGENCY else None,
        )
        db.session.add(new)
        db.session.flush()
        request.new_contract_id = new.id
        _event(new, "created", new.service_start, request, from_contract_id=contract.id)
        _ledger(request, quote, contract, new)
    elif request.kind == RequestKind.AGENCY_RENEWAL:
        # the next 6-month period is granted.
        contract.agency_periods_granted = (contract.agency_periods_granted or 1) + 1
        _event(contract, "agency_renewed", request.effective_on, request)
    db.session.flush()


def _announce_applied(request: ContractRequest) -> None:
    """R-61: the contract changed or ended today, as requested; a notice that says so."""
    from portal.services.requests import REQUEST_KIND_NAMES

    contract = request.contract
    organisation = contract.organisation
    with force_locale(organisation.locale):
        kind_name = str(REQUEST_KIND_NAMES[request.kind])
    mail.notify_organisation(
        organisation,
        "request_applied",
        to=mail.contract_notice_addresses(organisation),
        contract_id=contract.id,
        affects_contract=True,
        dedupe_key=f"request_applied:{request.id}",
        context={
            "request": request,
            "contract": contract,
            "kind_name": kind_name,
            "contract_url": mail.absolute_url("contracts.detail", contract_id=contract.id),
        },
    )


def _end(contract: Contract, last_day: date, request: ContractRequest | None) -> None:
    contract.status = ContractStatus.ENDED
    contract.ended_on = last_day
    _event(contract, "ended", last_day, request)


def _event(
    contract: Contract, kind: str, on: date, request: ContractRequest | None, **details: object
) -> None:
    if request is not None:
        details["request_id"] = request.id
        details["request_kind"] = request.kind.value
    db.session.add(ContractEvent(contract=contract, kind=kind, effective_on=on, details=details))


def _ledger(
    request: ContractRequest, quote: Quote, contract: Contract, new: Contract | None
) -> None:
    """Each charge of the confirmed quote, with its tax rate and invoice month (R-23, R-41)."""
    if not quote.charges:
        return
    month = quote.invoice_month
    assert month is not None, "a quote with charges names its invoice"
    for charge in quote.charges:
        target = new if charge.on_new_contract and new is not None else contract
        db.session.add(_line(request, charge, target, month, request.effective_on))


def _line(
    request: ContractRequest | None,
    charge: Charge,
    contract: Contract,
    month: calendar.BillingMonth,
    accrued_on: date,
) -> LedgerCharge:
    return LedgerCharge(
        organisation_id=contract.organisation_id,
        contract=contract,
        request=request,
        kind=charge.kind,
        amount=charge.amount,
        tax_rate_percent=charge.tax_rate_percent,
        months=charge.months,
        billing_month=month.name,
        bills_on=month.start,
        accrued_on=accrued_on,
    )


def charge_initial_fee(contract: Contract) -> LedgerCharge:
    """R-11/R-41: a new contract's initial fee, on the invoice issued at its service start."""
    db.session.flush()
    month = calendar.billing_month_of(contract.service_start, contract.anchor_day)
    line = _line(
        None,
        Charge(ChargeKind.INITIAL_FEE, contract.monthly_fee, contract.plan.tax_rate_percent),
        contract,
        month,
        contract.service_start,
    )
    line.bills_on = contract.service_start
    db.session.add(line)
    return line


# --- renewals and agency expiry -----------------------------------------------------------


def record_renewals(today: date) -> int:
    """R-05: record each renewal that has begun, once (the calendar already implies it)."""
    contracts = db.session.scalars(
        sa.select(Contract).where(
            Contract.status == ContractStatus.ACTIVE,
            Contract.sales_channel != SalesChannel.AGENCY,
        )
    ).all()
    recorded = {
        (contract_id, on)
        for contract_id, on in db.session.execute(
            sa.select(ContractEvent.contract_id, ContractEvent.effective_on).where(
                ContractEvent.kind == "renewed"
            )
        )
    }
    added = 0
    for contract in contracts:
        cal = contract.calendar(today)
        for number in range(1, cal.current_term.number + 1):
            term = calendar.renewal_term(cal.minimum_term_end, number)
            if (contract.id, term.start) in recorded:
                continue
            if _insert_once(
                ContractEvent(
                    contract_id=contract.id,
                    kind="renewed",
                    effective_on=term.start,
                    details={"start": term.start.isoformat(), "end": term.end.isoformat()},
                )
            ):
                added += 1
    db.session.commit()
    return added


def expire_agency_contracts(today: date) -> int:
    """R-06: an agency contract without a renewal application ends with its last period."""
    candidates = db.session.scalars(
        sa.select(Contract).where(
            Contract.status == ContractStatus.ACTIVE,
            Contract.sales_channel == SalesChannel.AGENCY,
        )
    ).all()
    ended = 0
    for contract in candidates:
        granted = contract.agency_periods_granted or 1
        anchor = calendar.term_anchor(contract.service_start, contract.anchor_day)
        last_day = calendar.agency_period(anchor, granted - 1).end
        if last_day >= today:
            continue
        pending_renewal = db.session.scalar(
            sa.select(ContractRequest.id).where(
                ContractRequest.contract_id == contract.id,
                ContractRequest.kind == RequestKind.AGENCY_RENEWAL,
                ContractRequest.status == RequestStatus.PENDING,
            )
        )
        if pending_renewal is not None:
            continue  # due later today or withdrawn meanwhile; the next run decides
        result = db.session.execute(
            sa.update(Contract)
            .where(
                Contract.id == contract.id,
                Contract.status == ContractStatus.ACTIVE,
                Contract.agency_periods_granted == granted,
            )
            .values(status=ContractStatus.ENDED, ended_on=last_day)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            continue
        if not _insert_once(
            ContractEvent(
                contract_id=contract.id,
                kind="ended",
                effective_on=last_day,
                details={"reason": "agency_period_expired"},
            )
        ):
            db.session.rollback()
            continue
        mail.notify_organisation(
            contract.organisation,
            "agency_contract_ended",
            to=mail.contract_notice_addresses(contract.organisation),
            contract_id=contract.id,
            affects_contract=True,
            dedupe_key=f"agency_contract_ended:{contract.id}",
            context={
                "contract": contract,
                "last_day": last_day,
                "contract_url": mail.absolute_url("contracts.detail", contract_id=contract.id),
            },
        )
        audit.record(
            "contract.agency_expired",
            organisation_id=contract.organisation_id,
            subject=contract,
            ended_on=last_day.isoformat(),
        )
        db.session.commit()
        ended += 1
    return ended


def _insert_once(event: ContractEvent) -> bool:
    begin_writing()  # SQLite: the savepoint must not be the transaction (portal/transaction.py)
    try:
        with db.session.begin_nested():
            db.session.add(event)
    except IntegrityError:
        return False
    return True
