"""Quotes for plan changes, cancellation and renewal (R-05, R-06, R-20..R-23, R-30..R-32).

Pure functions: each takes the contract's state, the price list, the notice date (the day the
written request reaches the provider, R-20) and the customer's choice, and returns either a
`Quote` or a `Refusal` with its reason. Nothing here reads the clock or the database.

Every quote names the invoice that will carry its charges: charges accrue on the effective
date and appear on the next invoice (R-23), which is issued on the first day of the billing
month after the one containing the effective date (R-41).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import date, timedelta
from typing import Any

from portal.domain import calendar
from portal.domain.money import STANDARD_TAX_RATE_PERCENT, TaxSummary, tax_by_rate

CHANGE_LEAD_DAYS = 10
# both ask for 30 days; earliest_termination() applies it.
# How far ahead a customer may date a request: far enough for any planning, short enough
# that a typo in the year is caught.
MAX_MONTHS_AHEAD = 24
TERMINATION_CHOICES = 12  # month ends offered in the pages; any later one up to the cap is valid

_ONE_DAY = timedelta(days=1)

# Refusals that no choice of date can lift: the contract ends before the earliest date
# the lead time or the notice allows.
DEAD_ENDS = frozenset({"no_upgrade_date", "no_downgrade_date", "no_termination_date"})


class RequestKind(enum.StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CANCELLATION = "cancellation"
    NON_RENEWAL = "non_renewal"
    AGENCY_RENEWAL = "agency_renewal"

    @property
    def ends_contract(self) -> bool:
        """Whether the request ends the current contract (on its effective date)."""
        return self in (RequestKind.DOWNGRADE, RequestKind.CANCELLATION, RequestKind.NON_RENEWAL)

    @property
    def changes_plan(self) -> bool:
        return self in (RequestKind.UPGRADE, RequestKind.DOWNGRADE)


class ChargeKind(enum.StrEnum):
    INITIAL_FEE = "initial_fee"  # R-11 (the new contract of a downgrade, or a new contract)
    INITIAL_FEE_DIFFERENCE = "initial_fee_difference"
    CHANGE_FEE = "change_fee"
    SHORTFALL = "shortfall"


@dataclass(frozen=True)
class PlanTerms:
    """A plan as the current price list offers it (R-10)."""

    id: int
    service_id: int
    monthly_fee: int
    minimum_months: int
    capacity_gb: int | None
    sold: bool = True
    tax_rate_percent: int = STANDARD_TAX_RATE_PERCENT

    @property
    def initial_fee(self) -> int:
        """R-11: one month of the monthly fee."""
        return self.monthly_fee


@dataclass(frozen=True)
class PriceTerms:
    """R-10/R-12: the current price list of the contract's service."""

    change_fee: int
    plans: tuple[PlanTerms, ...]
    change_fee_tax_rate_percent: int = STANDARD_TAX_RATE_PERCENT

    def plan(self, plan_id: int) -> PlanTerms | None:
        return next((p for p in self.plans if p.id == plan_id), None)


@dataclass(frozen=True)
class ContractState:
    """What a quote needs to know about a contract."""

    service_id: int
    plan_id: int
    monthly_fee: int  # as sold; R-11: also the current plan's initial fee
    minimum_months: int
    service_start: date
    anchor_day: int
    tax_rate_percent: int = STANDARD_TAX_RATE_PERCENT
    via_agency: bool = False
    agency_periods_granted: int | None = None
    ended_on: date | None = None
    has_pending_request: bool = False

    @property
    def term_anchor(self) -> date:
        return calendar.term_anchor(self.service_start, self.anchor_day)

    @property
    def minimum_term_end(self) -> date | None:
        """R-04; None through an agency, which has no minimum term (R-06 reading)."""
        if self.via_agency:
            return None
        return calendar.minimum_term_end(self.term_anchor, self.minimum_months)

    def shortfall_months(self, termination_on: date) -> int:
        """R-22/R-31: the minimum term's billing months left at `termination_on` (none through
        an agency, R-06 reading)."""
        if self.minimum_term_end is None:
            return 0
        return unexpired_months(self.minimum_term_end, termination_on, self.term_anchor)

    @property
    def last_day(self) -> date | None:
        """The last day the contract runs without further action, if one is set (R-06)."""
        if self.ended_on is not None:
            return self.ended_on
        if self.via_agency:
            granted = self.agency_periods_granted or 1
            return calendar.agency_period(self.term_anchor, granted - 1).end
        return None


@dataclass(frozen=True)
class Charge:
    """One charge a request creates; `on_new_contract` marks the downgrade's new contract."""

    kind: ChargeKind
    amount: int
    tax_rate_percent: int
    on_new_contract: bool = False
    months: int | None = None  # the shortfall's unexpired billing months


@dataclass(frozen=True)
class Refusal:
    """Why a request cannot be made; `field` names the choice at fault, if one is."""

    code: str
    field: str | None = None
    params: dict[str, Any] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    """What a request will do and cost, before the customer confirms it (R-32)."""

    kind: RequestKind
    notice_on: date
    effective_on: date  # upgrade: the plan switches; others: the last day of the old terms
    charges: tuple[Charge, ...] = ()
    # the billing month whose invoice, issued on its first day, carries the charges.
    invoice_month: calendar.BillingMonth | None = None
    earliest_effective_on: date | None = None
    target_plan_id: int | None = None
    # Upgrade
    new_monthly_fee: int | None = None
    new_fee_from: calendar.BillingMonth | None = None
    # Downgrade and cancellation
    termination_choices: tuple[date, ...] = ()
    unexpired_months: int | None = None
    minimum_term_end: date | None = None
    # Downgrade: the new contract
    new_service_start: date | None = None
    new_term_anchor: date | None = None
    new_minimum_term_end: date | None = None
    new_minimum_months: int | None = None
    # Notice against renewal
    renewal_notice_deadline: date | None = None
    # Agency renewal application
    next_period: calendar.Term | None = None

    @property
    def tax(self) -> tuple[TaxSummary, ...]:
        """R-13: tax once per rate over all the quote's charges, rounded down."""
        return tax_by_rate((c.amount, c.tax_rate_percent) for c in self.charges)

    @property
    def subtotal(self) -> int:
        return sum(c.amount for c in self.charges)

    @property
    def tax_total(self) -> int:
        return sum(t.tax for t in self.tax)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax_total

    def charge(self, kind: ChargeKind) -> int:
        return sum(c.amount for c in self.charges if c.kind == kind)

    @property
    def shortfall(self) -> int:
        return self.charge(ChargeKind.SHORTFALL)

    # --- storage: a confirmed request keeps the quote the customer saw -------------------

    def to_json(self) -> dict[str, Any]:
        def day(value: date | None) -> str | None:
            return value.isoformat() if value else None

        def month(value: calendar.BillingMonth | None) -> dict[str, str] | None:
            if value is None:
                return None
            return {"name": value.name, "start": value.start.isoformat(), "end": day(value.end)}

        return {
            "kind": self.kind.value,
            "notice_on": day(self.notice_on),
            "effective_on": day(self.effective_on),
            "charges": [
                {
                    "kind": c.kind.value,
                    "amount": c.amount,
                    "tax_rate_percent": c.tax_rate_percent,
                    "on_new_contract": c.on_new_contract,
                    "months": c.months,
                }
                for c in self.charges
            ],
            "tax": [
                {"rate_percent": t.rate_percent, "taxable": t.taxable, "tax": t.tax}
                for t in self.tax
            ],
            "subtotal": self.subtotal,
            "tax_total": self.tax_total,
            "total": self.total,
            "invoice_month": month(self.invoice_month),
            "earliest_effective_on": day(self.earliest_effective_on),
            "target_plan_id": self.target_plan_id,
            "new_monthly_fee": self.new_monthly_fee,
            "new_fee_from": month(self.new_fee_from),
            "termination_choices": [day(d) for d in self.termination_choices],
            "unexpired_months": self.unexpired_months,
            "minimum_term_end": day(self.minimum_term_end),
            "new_service_start": day(self.new_service_start),
            "new_term_anchor": day(self.new_term_anchor),
            "new_minimum_term_end": day(self.new_minimum_term_end),
            "new_minimum_months": self.new_minimum_months,
            "renewal_notice_deadline": day(self.renewal_notice_deadline),
            "next_period": (
                {
                    "start": day(self.next_period.start),
                    "end": day(self.next_period.end),
                    "number": self.next_period.number,
                }
                if self.next_period
                else None
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], anchor_day: int) -> Quote:
        def day(value: str | None) -> date | None:
            return date.fromisoformat(value) if value else None

        def month(value: dict[str, str] | None) -> calendar.BillingMonth | None:
            if value is None:
                return None
            return calendar.billing_month_of(date.fromisoformat(value["start"]), anchor_day)

        period = data.get("next_period")
        return cls(
            kind=RequestKind(data["kind"]),
            notice_on=date.fromisoformat(data["notice_on"]),
            effective_on=date.fromisoformat(data["effective_on"]),
            charges=tuple(
                Charge(
                    kind=ChargeKind(c["kind"]),
                    amount=c["amount"],
                    tax_rate_percent=c["tax_rate_percent"],
                    on_new_contract=c.get("on_new_contract", False),
                    months=c.get("months"),
                )
                for c in data["charges"]
            ),
            invoice_month=month(data.get("invoice_month")),
            earliest_effective_on=day(data.get("earliest_effective_on")),
            target_plan_id=data.get("target_plan_id"),
            new_monthly_fee=data.get("new_monthly_fee"),
            new_fee_from=month(data.get("new_fee_from")),
            termination_choices=tuple(
                d for d in (day(x) for x in data.get("termination_choices", [])) if d
            ),
            unexpired_months=data.get("unexpired_months"),
            minimum_term_end=day(data.get("minimum_term_end")),
            new_service_start=day(data.get("new_service_start")),
            new_term_anchor=day(data.get("new_term_anchor")),
            new_minimum_term_end=day(data.get("new_minimum_term_end")),
            new_minimum_months=data.get("new_minimum_months"),
            renewal_notice_deadline=day(data.get("renewal_notice_deadline")),
            next_period=(
                calendar.Term(
                    start=date.fromisoformat(period["start"]),
                    end=date.fromisoformat(period["end"]),
                    number=period.get("number", 0),
                )
                if period
                else None
            ),
        )


# --- shared rules ------------------------------------------------------------------------


def invoice_month_for(effective_on: date, anchor_day: int) -> calendar.BillingMonth:
    """R-23/R-41: the billing month whose invoice carries charges accrued on `effective_on`."""
    current = calendar.billing_month_of(effective_on, anchor_day)
    return calendar.billing_month_of(current.end + _ONE_DAY, anchor_day)


def unexpired_months(
    minimum_term_end: date, termination_on: date, term_anchor: date | None = None
) -> int:
    """R-22/R-31: billing months of the minimum term not yet elapsed at a termination date.

    `termination_on` is a month end, so the months left run from the next day to E; after the
    minimum term (renewed terms included) nothing is left. The minimum term starts at A
    (R-03/R-04): months before `term_anchor` are not part of it, so a termination before the
    service has started leaves at most the M months of the minimum term.
    """
    if termination_on >= minimum_term_end:
        return 0
    start, end = termination_on + _ONE_DAY, minimum_term_end + _ONE_DAY
    if term_anchor is not None and start < term_anchor:
        start = term_anchor
    return (end.year - start.year) * 12 + (end.month - start.month)


def termination_choices(notice_on: date, anchor_day: int) -> tuple[date, ...]:
    """R-30: the earliest termination month end and the following ones offered in the pages."""
    first = calendar.earliest_termination(notice_on, anchor_day)
    start = first + _ONE_DAY  # an anchor day
    return tuple(
        calendar.add_billing_months(start, n) - _ONE_DAY for n in range(TERMINATION_CHOICES)
    )


def _latest_allowed(notice_on: date) -> date:
    index = notice_on.year * 12 + notice_on.month - 1 + MAX_MONTHS_AHEAD
    day = min(notice_on.day, 28)
    return date(index // 12, index % 12 + 1, day)


def _contract_refusal(state: ContractState, notice_on: date) -> Refusal | None:
    """Refusals that apply to every kind of request."""
    if state.ended_on is not None:
        return Refusal("contract_ended", params={"ended_on": state.ended_on})
    if state.has_pending_request:
        return Refusal("pending_request")
    last = state.last_day
    if last is not None and last < notice_on:
        return Refusal("contract_ended", params={"ended_on": last})
    return None


def _plan_refusal(state: ContractState, prices: PriceTerms, plan_id: int | None) -> Refusal | None:
    if plan_id is None:
        return Refusal("plan_required", "plan")
    plan = prices.plan(plan_id)
    if plan is None or plan.service_id != state.service_id:
        return Refusal("plan_not_offered", "plan")
    if not plan.sold:
        return Refusal("plan_not_sold", "plan")
    if plan.id == state.plan_id:
        return Refusal("same_plan", "plan")
    return None


def _termination_refusal(
    state: ContractState, notice_on: date, termination_on: date | None, dead_end: str
) -> tuple[date, Refusal | None]:
    """R-30: the termination date chosen (the earliest when none), or why it cannot be.

    `dead_end` is the refusal's code when no date at all can be chosen: the contract's last
    day (R-06) comes before the earliest month end the 30 days' notice allows.
    """
    earliest = calendar.earliest_termination(notice_on, state.anchor_day)
    last = state.last_day
    if last is not None and earliest > last:
        return earliest, Refusal(dead_end, params={"last_day": last, "earliest": earliest})
    if termination_on is None:
        termination_on = earliest
    if not calendar.is_month_end(termination_on, state.anchor_day):
        return termination_on, Refusal("not_month_end", "termination_on", {"earliest": earliest})
    if termination_on < earliest:
        return termination_on, Refusal(
            "termination_too_early", "termination_on", {"earliest": earliest}
        )
    if termination_on > _latest_allowed(notice_on):
        return termination_on, Refusal(
            "too_far_ahead", "termination_on", {"months": MAX_MONTHS_AHEAD}
        )
    if last is not None and termination_on > last:
        return termination_on, Refusal("after_contract_end", "termination_on", {"last_day": last})
    return termination_on, None


# --- one function per kind ---------------------------------------------------------------


def quote_upgrade(
    state: ContractState,
    prices: PriceTerms,
    notice_on: date,
    plan_id: int | None,
    effective_on: date | None = None,
) -> Quote | Refusal:
    """R-20/R-21: a move to a dearer plan, effective at least 10 days after the notice."""
    refusal = _contract_refusal(state, notice_on) or _plan_refusal(state, prices, plan_id)
    if refusal:
        return refusal
    plan = prices.plan(plan_id)  # type: ignore[arg-type]
    assert plan is not None
    if plan.monthly_fee <= state.monthly_fee:
        return Refusal("not_an_upgrade", "plan")
    earliest = max(notice_on + timedelta(days=CHANGE_LEAD_DAYS), state.service_start)
    last = state.last_day
    if last is not None and earliest > last:
        # No date can be chosen: the contract ends before the lead time has run.
        return Refusal("no_upgrade_date", params={"last_day": last, "earliest": earliest})
    if effective_on is None:
        effective_on = earliest
    if effective_on < earliest:
        return Refusal("inside_lead_time", "effective_on", {"earliest": earliest})
    if effective_on > _latest_allowed(notice_on):
        return Refusal("too_far_ahead", "effective_on", {"months": MAX_MONTHS_AHEAD})
    if last is not None and effective_on > last:
        return Refusal("after_contract_end", "effective_on", {"last_day": last})

    month = invoice_month_for(effective_on, state.anchor_day)
    return Quote(
        kind=RequestKind.UPGRADE,
        notice_on=notice_on,
        effective_on=effective_on,
        earliest_effective_on=earliest,
        target_plan_id=plan.id,
        charges=(
            Charge(
                ChargeKind.INITIAL_FEE_DIFFERENCE,
                plan.initial_fee - state.monthly_fee,
                plan.tax_rate_percent,
            ),
            Charge(ChargeKind.CHANGE_FEE, prices.change_fee, prices.change_fee_tax_rate_percent),
        ),
        invoice_month=month,
        new_monthly_fee=plan.monthly_fee,
        # from the billing month after the one in which the change takes effect.
        new_fee_from=month,
        minimum_term_end=state.minimum_term_end,  # R-21 reading: not restarted
    )


def quote_downgrade(
    state: ContractState,
    prices: PriceTerms,
    notice_on: date,
    plan_id: int | None,
    termination_on: date | None = None,
) -> Quote | Refusal:
    """R-22: end the contract at a month end >= notice + 30 days and start the lower plan."""
    refusal = _contract_refusal(state, notice_on) or _plan_refusal(state, prices, plan_id)
    if refusal:
        return refusal
    plan = prices.plan(plan_id)  # type: ignore[arg-type]
    assert plan is not None
    if plan.monthly_fee >= state.monthly_fee:
        return Refusal("not_a_downgrade", "plan")
    termination_on, refusal = _termination_refusal(
        state, notice_on, termination_on, "no_downgrade_date"
    )
    if refusal:
        return refusal

    months = state.shortfall_months(termination_on)
    new_start = termination_on + _ONE_DAY  # an anchor day, so it is also the new A
    charges = [
        Charge(ChargeKind.CHANGE_FEE, prices.change_fee, prices.change_fee_tax_rate_percent),
        Charge(ChargeKind.INITIAL_FEE, plan.initial_fee, plan.tax_rate_percent, True),
    ]
    if months:
        charges.insert(
            0,
            Charge(
                ChargeKind.SHORTFALL,
                state.monthly_fee * months,
                state.tax_rate_percent,
                months=months,
            ),
        )
    return Quote(
        kind=RequestKind.DOWNGRADE,
        notice_on=notice_on,
        effective_on=termination_on,
        target_plan_id=plan.id,
        charges=tuple(charges),
        invoice_month=invoice_month_for(termination_on, state.anchor_day),
        termination_choices=_choices_within(state, notice_on),
        unexpired_months=months,
        minimum_term_end=state.minimum_term_end,
        new_monthly_fee=plan.monthly_fee,
        new_service_start=new_start,
        new_term_anchor=calendar.term_anchor(new_start, state.anchor_day),
        # The new contract is sold through the same channel: through an agency, no minimum
        # term either (R-06 reading).
        new_minimum_term_end=None
        if state.via_agency
        else calendar.minimum_term_end(new_start, plan.minimum_months),
        new_minimum_months=None if state.via_agency else plan.minimum_months,
    )


def quote_cancellation(
    state: ContractState, notice_on: date, termination_on: date | None = None
) -> Quote | Refusal:
    """R-30/R-31: end the service at a month end >= notice + 30 days, paying any shortfall."""
    refusal = _contract_refusal(state, notice_on)
    if refusal:
        return refusal
    termination_on, refusal = _termination_refusal(
        state, notice_on, termination_on, "no_termination_date"
    )
    if refusal:
        return refusal
    months = state.shortfall_months(termination_on)
    charges = (
        (
            Charge(
                ChargeKind.SHORTFALL,
                state.monthly_fee * months,
                state.tax_rate_percent,
                months=months,
            ),
        )
        if months
        else ()
    )
    return Quote(
        kind=RequestKind.CANCELLATION,
        notice_on=notice_on,
        effective_on=termination_on,
        charges=charges,
        invoice_month=invoice_month_for(termination_on, state.anchor_day) if charges else None,
        termination_choices=_choices_within(state, notice_on),
        unexpired_months=months,
        minimum_term_end=state.minimum_term_end,
    )


def quote_non_renewal(state: ContractState, notice_on: date) -> Quote | Refusal:
    """R-05: notice against renewal stops the contract at the end of its current term."""
    if state.via_agency:
        return Refusal("agency_contract_no_renewal")
    refusal = _contract_refusal(state, notice_on)
    if refusal:
        return refusal
    term = calendar.current_term(state.term_anchor, state.minimum_months, notice_on)
    deadline = calendar.renewal_notice_deadline(term.end)
    if notice_on > deadline:
        following = calendar.renewal_term(state.minimum_term_end, term.number + 1)
        return Refusal(
            "renewal_deadline_passed",
            params={
                "deadline": deadline,
                "term_end": term.end,
                "next_term_end": following.end,
                "next_deadline": calendar.renewal_notice_deadline(following.end),
            },
        )
    return Quote(
        kind=RequestKind.NON_RENEWAL,
        notice_on=notice_on,
        effective_on=term.end,
        renewal_notice_deadline=deadline,
        minimum_term_end=state.minimum_term_end,
        unexpired_months=0,
    )


def quote_agency_renewal(state: ContractState, notice_on: date) -> Quote | Refusal:
    """R-06: apply for the next 6-month period before the last granted one ends."""
    if not state.via_agency:
        return Refusal("not_an_agency_contract")
    refusal = _contract_refusal(state, notice_on)
    if refusal:
        return refusal
    granted = state.agency_periods_granted or 1
    following = calendar.agency_period(state.term_anchor, granted)
    return Quote(
        kind=RequestKind.AGENCY_RENEWAL,
        # The new period is granted when it begins; until then the application can be withdrawn.
        notice_on=notice_on,
        effective_on=following.start,
        next_period=replace(following, number=granted),
    )


def _choices_within(state: ContractState, notice_on: date) -> tuple[date, ...]:
    last = state.last_day
    choices = termination_choices(notice_on, state.anchor_day)
    return tuple(d for d in choices if last is None or d <= last)


def quote(
    kind: RequestKind,
    state: ContractState,
    prices: PriceTerms,
    notice_on: date,
    *,
    plan_id: int | None = None,
    effective_on: date | None = None,
) -> Quote | Refusal:
    """Dispatch to the quote of one kind; `effective_on` is the chosen date, if any."""
    if kind == RequestKind.UPGRADE:
        return quote_upgrade(state, prices, notice_on, plan_id, effective_on)
    if kind == RequestKind.DOWNGRADE:
        return quote_downgrade(state, prices, notice_on, plan_id, effective_on)
    if kind == RequestKind.CANCELLATION:
        return quote_cancellation(state, notice_on, effective_on)
    if kind == RequestKind.NON_RENEWAL:
        return quote_non_renewal(state, notice_on)
    return quote_agency_renewal(state, notice_on)


def change_kind(current_monthly_fee: int, target_monthly_fee: int | None) -> RequestKind:
    """R-21/R-22: the plan chosen decides. A cheaper plan is a downgrade; a dearer one, or none
    chosen yet, an upgrade (whose quote refuses a plan that is not dearer)."""
    if target_monthly_fee is not None and target_monthly_fee < current_monthly_fee:
        return RequestKind.DOWNGRADE
    return RequestKind.UPGRADE


def suggested_plan(plans: tuple[PlanTerms, ...], used_gb: float) -> PlanTerms | None:
    """R-15: the cheapest plan on sale whose capacity holds the usage."""
    fitting = [
        p for p in plans if p.sold and p.capacity_gb is not None and p.capacity_gb >= used_gb
    ]
    return min(fitting, key=lambda p: (p.monthly_fee, p.capacity_gb), default=None)


def likely_upgrade(
    monthly_fee: int,
    capacity_gb: int | None,
    plans: tuple[PlanTerms, ...],
    used_gb: float | None = None,
) -> PlanTerms | None:
    """R-21/R-15: the plan a change of plan starts from: for a contract using more than its
    capacity, the cheapest dearer plan that holds the usage; otherwise the cheapest dearer plan.
    None when no plan on sale is dearer: a downgrade (R-22), with its shortfall, is never
    chosen for the customer."""
    dearer = tuple(p for p in plans if p.sold and p.monthly_fee > monthly_fee)
    if used_gb is not None and capacity_gb is not None and used_gb > capacity_gb:
        fitting = suggested_plan(dearer, used_gb)
        if fitting is not None:
            return fitting
    return min(dearer, key=lambda p: (p.monthly_fee, p.capacity_gb or 0, p.id), default=None)


@dataclass(frozen=True)
class CheaperEnd:
    """A later month end than the one chosen, at which ending costs less (R-22, R-31)."""

    termination_on: date
    shortfall: int  # the shortfall owed when ending then
    months_later: int  # billing months after the date chosen, whose monthly fees are billed


def cheaper_end(state: ContractState, notice_on: date, termination_on: date) -> CheaperEnd | None:
    """R-22/R-31: when ending on `termination_on` owes a shortfall, the later month end that
    owes none: the end of the minimum term, if the customer can still choose it (within
    MAX_MONTHS_AHEAD of the notice and not after the contract's last day, R-06). None when the
    date chosen owes nothing or that month end cannot be chosen.

    Each month in between lowers the shortfall by the monthly fee billed for that month, so
    the end of the minimum term is the one worth pointing out: ending then, the customer pays
    the monthly fees until then and keeps the service, instead of paying them as a shortfall.
    """
    end = state.minimum_term_end
    if end is None or state.shortfall_months(termination_on) == 0:
        return None
    if end > _latest_allowed(notice_on):
        return None
    last = state.last_day
    if last is not None and end > last:
        return None
    months_later = unexpired_months(end, termination_on)
    return CheaperEnd(termination_on=end, shortfall=0, months_later=months_later)
