"""Quoting, confirming and withdrawing requests against a contract (R-05, R-06, R-20..R-32).

A confirmed request is the customer's written notice (R-20 reading): it keeps the quote the
customer saw, who sent it (and the agent who acted, R-71), when and from where.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal.clock import clock
from portal.domain import quotes
from portal.domain.quotes import PlanTerms, PriceTerms, Quote, Refusal, RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractRequest,
    ContractStatus,
    Plan,
    PriceList,
    RequestStatus,
    SalesChannel,
    Service,
)
from portal.permissions import Actor, can_request_changes
from portal.presentation import long_date
from portal.services import audit, documents, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

MAX_USER_AGENT = 300

# What each refusal says; params are dates (shown long) or numbers.
_REFUSALS: dict[str, Any] = {
    "contract_ended": _l("This contract ended on %(ended_on)s."),
    "pending_request": _l(
        "A request is already pending on this contract. Withdraw it before making another."
    ),
    "plan_required": _l("Choose a plan."),
    "plan_not_offered": _l("This plan is not offered for this contract's service."),
    "plan_not_sold": _l("This plan is no longer sold."),
    "same_plan": _l("The contract is already on this plan."),
    "not_an_upgrade": _l(
        "This plan is not dearer than the current one. A move to a lower plan is a downgrade."
    ),
    "not_a_downgrade": _l("A downgrade must be to a cheaper plan. Choose an upgrade instead."),
    "inside_lead_time": _l(
        "A plan change must reach us at least 10 days before it takes effect: "
        "the earliest date is %(earliest)s."
    ),
    "too_far_ahead": _l("Choose a date within %(months)d months."),
    "after_contract_end": _l("The contract ends on %(last_day)s; choose a date up to then."),
    # Dead ends (quotes.DEAD_ENDS): why no date is possible, and what to do instead.
    "no_upgrade_date": _l(
        "This contract ends on %(last_day)s, before a plan change could take effect: a change "
        "must reach us at least 10 days ahead, so the earliest date would be %(earliest)s. "
        "To keep the contract, apply for its renewal; once the next period has begun, you can "
        "change the plan."
    ),
    "no_downgrade_date": _l(
        "This contract ends on %(last_day)s, before a downgrade could take effect: it needs 30 "
        "days' notice, so the earliest end would be %(earliest)s. Without a renewal application "
        "the contract simply ends on %(last_day)s, and your agency can arrange a new contract "
        "on the cheaper plan from the next day. Or apply for renewal, and change the plan once "
        "the next period has begun."
    ),
    "no_termination_date": _l(
        "This contract ends on %(last_day)s unless its renewal is applied for, so it needs no "
        "cancellation: a cancellation needs 30 days' notice, and the earliest end would be "
        "%(earliest)s, after that day. To keep the contract, apply for its renewal instead."
    ),
    "not_month_end": _l(
        "A contract ends at the end of a billing month. The earliest possible end is %(earliest)s."
    ),
    "termination_too_early": _l(
        "Notice must be given at least 30 days ahead: the earliest possible end is %(earliest)s."
    ),
    "renewal_deadline_passed": _l(
        "The last day to give notice against the renewal on %(term_end)s was %(deadline)s. "
        "Notice now stops the contract at %(next_term_end)s (deadline %(next_deadline)s), "
        "or end it earlier by cancellation."
    ),
    "agency_contract_no_renewal": _l(
        "Contracts through an agency do not renew automatically; they end unless a renewal "
        "application is filed."
    ),
    "not_an_agency_contract": _l("Only contracts through an agency need a renewal application."),
    "notice_in_past": _l("The notice date cannot be before today (%(today)s)."),
    "unknown_kind": _l("Unknown kind of request."),
    "bad_date": _l("Enter a date as YYYY-MM-DD."),
    "service_not_changeable": _l("This service's contracts cannot be changed in the portal."),
}

# The name of each kind of request, for e-mails (pages use contracts/_kind.html).
REQUEST_KIND_NAMES: dict[RequestKind, Any] = {
    RequestKind.UPGRADE: _l("Upgrade"),
    RequestKind.DOWNGRADE: _l("Downgrade"),
    RequestKind.CANCELLATION: _l("Cancellation"),
    RequestKind.NON_RENEWAL: _l("Notice against renewal"),
    RequestKind.AGENCY_RENEWAL: _l("Agency renewal application"),
}


def explain(refusal: Refusal) -> str:
    """The user-facing sentence for a refusal, in the current language."""
    params = {k: long_date(v) if isinstance(v, date) else v for k, v in refusal.params.items()}
    message = _REFUSALS.get(refusal.code)
    return str(message) % params if message is not None else refusal.code


class RequestRefused(PortalError):
    """The rules refuse the request; `refusal` keeps the reason's code for the API."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(explain(refusal), field=refusal.field)
        self.refusal = refusal


# --- reading ------------------------------------------------------------------------------


def current_price_list(service: Service) -> PriceList | None:
    """R-10: the newest price list of a service."""
    return db.session.scalar(
        sa.select(PriceList)
        .where(PriceList.service_id == service.id)
        .order_by(PriceList.version.desc())
        .limit(1)
    )


def price_terms(service: Service) -> PriceTerms:
    """R-10: the newest price list's change fee and plans, in one statement (issue 15)."""
    newest = (
        sa.select(PriceList.id)
        .where(PriceList.service_id == service.id)
        .order_by(PriceList.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    price_list = (
        db.session.execute(
            sa.select(PriceList).options(joinedload(PriceList.plans)).where(PriceList.id == newest)
        )
        .unique()
        .scalar_one_or_none()
    )
    if price_list is None:
        return PriceTerms(change_fee=0, plans=())
    return PriceTerms(
        change_fee=price_list.change_fee,
        change_fee_tax_rate_percent=price_list.change_fee_tax_rate_percent,
        plans=tuple(plan_terms(p) for p in price_list.plans),
    )


def plan_terms(plan: Plan) -> PlanTerms:
    return PlanTerms(
        id=plan.id,
        service_id=plan.price_list.service_id,
        monthly_fee=plan.monthly_fee,
        minimum_months=plan.minimum_months,
        capacity_gb=plan.capacity_gb,
        sold=plan.sold,
        tax_rate_percent=plan.tax_rate_percent,
    )


def pending_request(contract: Contract) -> ContractRequest | None:
    return db.session.scalar(
        sa.select(ContractRequest).where(
            ContractRequest.contract_id == contract.id,
            ContractRequest.status == RequestStatus.PENDING,
        )
    )


def requests_of(contract: Contract) -> list[ContractRequest]:
    """The contract's requests, newest first, with who asked and who withdrew (the page names
    them) in the same statement."""
    return list(
        db.session.scalars(
            sa.select(ContractRequest)
            .options(
                joinedload(ContractRequest.requested_by), joinedload(ContractRequest.withdrawn_by)
            )
            .where(ContractRequest.contract_id == contract.id)
            .order_by(ContractRequest.id.desc())
        )
    )


def state_of(contract: Contract, *, has_pending: bool | None = None) -> quotes.ContractState:
    if has_pending is None:
        has_pending = pending_request(contract) is not None
    return quotes.ContractState(
        service_id=contract.service_id,
        plan_id=contract.plan_id,
        monthly_fee=contract.monthly_fee,
        minimum_months=contract.minimum_months,
        service_start=contract.service_start,
        anchor_day=contract.anchor_day,
        tax_rate_percent=contract.plan.tax_rate_percent,
        via_agency=contract.sales_channel == SalesChannel.AGENCY,
        agency_periods_granted=contract.agency_periods_granted,
        ended_on=contract.ended_on if contract.status == ContractStatus.ENDED else None,
        has_pending_request=has_pending,
    )


def kinds_for(contract: Contract) -> list[RequestKind]:
    """The kinds of request a contract admits: agency contracts renew only on application."""
    if not contract.service.paid:
        return []
    if contract.sales_channel == SalesChannel.AGENCY:
        return [
            RequestKind.UPGRADE,
            RequestKind.DOWNGRADE,
            RequestKind.CANCELLATION,
            RequestKind.AGENCY_RENEWAL,
        ]
    return [
        RequestKind.UPGRADE,
        RequestKind.DOWNGRADE,
        RequestKind.CANCELLATION,
        RequestKind.NON_RENEWAL,
    ]


@dataclass(frozen=True)
class Choice:
    """What the customer picked; `on` is the effective date (upgrade) or the month end."""

    kind: RequestKind
    plan_id: int | None = None
    on: date | None = None


def parse_choice(
    kind: str | None, plan_id: str | int | None, on: str | date | None
) -> Choice | Refusal:
    """A choice from a form or JSON: bad input is a refusal with the field at fault."""
    try:
        request_kind = RequestKind(kind or "")
    except ValueError:
        return Refusal("unknown_kind", "kind")
    plan: int | None = None
    if plan_id not in (None, ""):
        try:
            plan = int(plan_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return Refusal("plan_not_offered", "plan")
    day: date | None = None
    if isinstance(on, date):
        day = on
    elif on not in (None, ""):
        try:
            day = date.fromisoformat(str(on))
        except ValueError:
            return Refusal("bad_date", "effective_on")
    return Choice(request_kind, plan, day)


def make_quote(
    contract: Contract, choice: Choice, notice_on: date | None = None
) -> Quote | Refusal:
    """The quote for a choice on a notice date (today unless planning ahead)."""
    today = clock.today()
    notice_on = notice_on or today
    if notice_on < today:
        return Refusal("notice_in_past", "notice_on", {"today": today})
    if not contract.service.paid:
        return Refusal("service_not_changeable")
    return quotes.quote(
        choice.kind,
        state_of(contract),
        price_terms(contract.service),
        notice_on,
        plan_id=choice.plan_id,
        effective_on=choice.on,
    )


def quote_fingerprint(quote: Quote) -> str:
    """R-32/R-71: what the confirm form carries instead of the quote's total: an HMAC of the
    whole quote (dates, months, charges, tax, total) under the portal's secret. The confirm
    step recomputes the quote and compares fingerprints, so a quote that changed since it was
    shown is shown again, and nothing in the page (hidden fields included) is an amount an
    agency may not see."""
    canonical = json.dumps(quote.to_json(), sort_keys=True, default=str, separators=(",", ":"))
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"quote:" + canonical.encode(), hashlib.sha256).hexdigest()[:40]


def same_quote(quote: Quote, fingerprint: str | None) -> bool:
    return hmac.compare_digest(quote_fingerprint(quote), (fingerprint or "")[:64])


def applies_on(kind: RequestKind, effective_on: date) -> date:
    """The day the scheduled command carries a request out.

    An upgrade switches on its effective date; a request that ends a contract is carried out
    the day after its last day; an agency renewal on the first day of the new period.
    """
    return effective_on + timedelta(days=1) if kind.ends_contract else effective_on


# --- confirming and withdrawing ----------------------------------------------------------


def submit(
    actor: Actor,
    contract: Contract,
    choice: Choice,
    *,
    ip: str,
    user_agent: str = "",
    via_api: bool = False,
) -> ContractRequest:
    """Record a confirmed request as the written notice (R-20, R-32); the caller commits."""
    if not can_request_changes(actor):
        raise NotAllowed(_("You may see quotes but not make requests on this contract."))
    result = make_quote(contract, choice)
    if isinstance(result, Refusal):
        raise RequestRefused(result)
    request = ContractRequest(
        contract=contract,
        organisation_id=contract.organisation_id,
        kind=result.kind,
        notice_on=result.notice_on,
        effective_on=result.effective_on,
        applies_on=applies_on(result.kind, result.effective_on),
        from_plan_id=contract.plan_id,
        target_plan_id=result.target_plan_id,
        quote=result.to_json(),
        requested_by_id=actor.user.id,
        entry_id=actor.entry.id if actor.entry else None,
        requested_from=ip[:64],
        user_agent=user_agent[:MAX_USER_AGENT],
        via_api=via_api,
    )
    begin_writing()  # SQLite: the savepoint must not be the transaction (portal/transaction.py)
    try:
        with db.session.begin_nested():
            db.session.add(request)
    except IntegrityError as exc:
        # another confirmation got there first (twenty at once leave one).
        raise RequestRefused(Refusal("pending_request")) from exc
    audit.record(
        "request.submitted",
        actor=actor,
        organisation_id=contract.organisation_id,
        subject=request,
        ip=ip,
        contract_id=contract.id,
        kind=request.kind.value,
        effective_on=request.effective_on.isoformat(),
        total=result.total,
        via_api=via_api,
    )
    db.session.flush()
    # the confirmation the customer keeps, rendered once, now, with the request.
    documents.store_confirmation(request)
    _notify(actor, request, "request_submitted")
    return request


def can_withdraw(request: ContractRequest, today: date | None = None) -> bool:
    """R-23/R-32: a pending request can be withdrawn until its effective date."""
    today = today or clock.today()
    return request.status == RequestStatus.PENDING and today < request.effective_on


def withdraw(actor: Actor, request: ContractRequest, *, ip: str) -> ContractRequest:
    """R-23: withdraw a pending request before its effective date; nothing is billed."""
    if not can_request_changes(actor):
        raise NotAllowed(_("You may not withdraw requests on this contract."))
    if not can_withdraw(request):
        raise Conflict(_("This request can no longer be withdrawn."))
    now = clock.now()
    # Only one of two racing withdrawals (or a withdrawal racing the scheduled command) wins.
    result = db.session.execute(
        sa.update(ContractRequest)
        .where(ContractRequest.id == request.id, ContractRequest.status == RequestStatus.PENDING)
        .values(
            status=RequestStatus.WITHDRAWN,
            withdrawn_at=now,
            withdrawn_by_id=actor.user.id,
            withdrawn_entry_id=actor.entry.id if actor.entry else None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(_("This request can no longer be withdrawn."))
    db.session.refresh(request)
    audit.record(
        "request.withdrawn",
        actor=actor,
        organisation_id=request.organisation_id,
        subject=request,
        ip=ip,
        contract_id=request.contract_id,
        kind=request.kind.value,
    )
    documents.store_withdrawal(request)  # the withdrawal is a document of its own
    _notify(actor, request, "request_withdrawn")
    return request


def _notify(actor: Actor, request: ContractRequest, kind: str) -> None:
    """R-61: the request (or its withdrawal) is confirmed by e-mail to the registered address
    and the administrators, in the organisation's language; a notice that changes or ends a
    contract, so it is marked as such. When an agent acted, the e-mail says so (R-71)."""
    contract = request.contract
    organisation = contract.organisation
    who = actor.user.name
    if actor.user.partner is not None:
        who = f"{actor.user.name} ({actor.user.partner.name})"
    with force_locale(organisation.locale):
        kind_name = str(REQUEST_KIND_NAMES[request.kind])
    mail.notify_organisation(
        organisation,
        kind,
        to=mail.contract_notice_addresses(organisation),
        contract_id=contract.id,
        affects_contract=True,
        context={
            "request": request,
            "contract": contract,
            "kind_name": kind_name,
            "total": request.quote.get("total"),
            "requested_by": who,
            "withdrawn_by": who,
            "detail_url": mail.absolute_url(
                "contracts.request_detail", contract_id=contract.id, request_id=request.id
            ),
        },
    )


def pending_by_contract(contract_ids: list[int]) -> dict[int, ContractRequest]:
    """The pending request of each listed contract, in one query."""
    if not contract_ids:
        return {}
    found = db.session.scalars(
        sa.select(ContractRequest).where(
            ContractRequest.contract_id.in_(contract_ids),
            ContractRequest.status == RequestStatus.PENDING,
        )
    )
    return {r.contract_id: r for r in found}
