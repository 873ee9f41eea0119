"""The JSON of contracts, quotes, requests, usage, incidents and SLA claims.

R-71: agencies (取次店) act for their clients in everything but fees and invoices, so nothing
sent to an agency's user carries an amount: monthly fees, charges, tax and totals are left
out (quotes, compensations and claims are copied key by key from a list of what is not an
amount, so a key added later stays out until someone decides it may go in).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from portal.clock import TOKYO
from portal.domain.calendar import ContractCalendar
from portal.models import Contract, ContractRequest, IncidentVersion, Plan, SlaClaim, UsageReading
from portal.permissions import Actor, can_request_changes, can_see_fees
from portal.services import claims as claim_service
from portal.services import requests as request_service
from portal.services.claims import Computation, Option
from portal.services.incidents import IncidentView
from portal.services.usage import UsageView

# What of a quote an agency sees: dates, months and kinds, never an amount.
QUOTE_KEYS_WITHOUT_AMOUNTS = (
    "kind",
    "notice_on",
    "effective_on",
    "invoice_month",
    "earliest_effective_on",
    "target_plan_id",
    "new_fee_from",
    "termination_choices",
    "unexpired_months",
    "minimum_term_end",
    "new_service_start",
    "new_term_anchor",
    "new_minimum_term_end",
    "new_minimum_months",
    "renewal_notice_deadline",
    "next_period",
)
CHARGE_KEYS_WITHOUT_AMOUNTS = ("kind", "tax_rate_percent", "on_new_contract", "months")
# What of an SLA compensation and a claim an agency sees: months, minutes, grounds and dates;
# never an amount, nor the reasoning (it states yen), the review's reason (it may) or the
# invoices that carried the credit (R-71: invoices are not the agency's).
COMPENSATION_KEYS_WITHOUT_AMOUNTS = (
    "billing_month",
    "total_minutes",
    "counted_minutes",
    "lines",
    "claim_deadline",
)
COMPENSATION_LINE_KEYS_WITHOUT_AMOUNTS = ("kind", "minutes", "late_occurrence", "late_recovery")
CLAIM_KEYS_WITHOUT_AMOUNTS = (
    "id",
    "number",
    "contract_id",
    "incident_id",
    "incident_version",
    "billing_month",
    "status",
    "claimed_on",
    "channel",
    "filed_at",
    "reviewed_at",
    "compensation",
)


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def instant(value: datetime | None) -> str | None:
    """Instants are kept in UTC and given in Tokyo time (R-01), with their offset."""
    return value.astimezone(TOKYO).isoformat() if value is not None else None


def gigabytes(value: Decimal) -> str:
    """Usage as a decimal string, so that 123.45 stays 123.45 in every client."""
    return f"{value:.2f}"


def plan(found: Plan | None, *, locale: str, fees: bool) -> dict[str, Any] | None:
    if found is None:
        return None
    data: dict[str, Any] = {
        "id": found.id,
        "code": found.code,
        "name": found.name(locale),
        "capacity_gb": found.capacity_gb,
        "minimum_months": found.minimum_months,
    }
    if fees:
        data["monthly_fee"] = found.monthly_fee
    return data


def pending_summary(request: ContractRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {
        "id": request.id,
        "reference": request.reference,
        "kind": request.kind.value,
        "notice_on": day(request.notice_on),
        "effective_on": day(request.effective_on),
    }


def contract(
    found: Contract,
    cal: ContractCalendar,
    *,
    actor: Actor,
    locale: str,
    pending: ContractRequest | None,
) -> dict[str, Any]:
    """A contract with its whole calendar on the Tokyo business date (R-02..R-06)."""
    fees = can_see_fees(actor)
    active = found.ended_on is None
    data: dict[str, Any] = {
        "id": found.id,
        "organisation": {"id": found.organisation_id, "name": found.organisation.legal_name},
        "service": {"code": found.service.code, "name": found.service.name(locale)},
        "plan": plan(found.plan, locale=locale, fees=fees),
        "status": found.status.value,
        "sales_channel": found.sales_channel.value,
        # R-06 reading: a contract through an agency has no minimum term.
        "minimum_months": None if cal.minimum_term_end is None else found.minimum_months,
        "service_start": day(cal.service_start),
        "anchor_day": cal.anchor_day,
        "term_anchor": day(cal.term_anchor),
        "minimum_term_end": day(cal.minimum_term_end),
        "in_minimum_term": cal.in_minimum_term,
        "agency_periods": [
            {"start": day(p.start), "end": day(p.end), "number": p.number}
            for p in cal.agency_periods
        ],
        "current_term": {
            "start": day(cal.current_term.start),
            "end": day(cal.current_term.end),
            "number": cal.current_term.number,
        },
        "next_renewal_start": day(cal.next_renewal_start),
        "renewal_notice_deadline": day(cal.renewal_notice_deadline),
        "days_to_notice_deadline": cal.days_to_notice_deadline,
        "agency_renewal_due": day(cal.agency_renewal_due),
        "days_to_agency_renewal_due": cal.days_to_agency_renewal_due,
        "ended_on": day(cal.ended_on),
        "pending_request": pending_summary(pending),
        "request_kinds": (
            [k.value for k in request_service.kinds_for(found)] if active and not pending else []
        ),
    }
    if fees:
        data["monthly_fee"] = found.monthly_fee  # as sold, tax excluded
    return data


def quote(
    stored: dict[str, Any],
    *,
    actor: Actor,
    locale: str,
    target_plan: Plan | None,
    current_plan: Plan | None = None,
) -> dict[str, Any]:
    """A quote (Quote.to_json(), or the one a request keeps) with its plans' names."""
    fees = can_see_fees(actor)
    if fees:
        data = dict(stored)
    else:
        data = {k: stored.get(k) for k in QUOTE_KEYS_WITHOUT_AMOUNTS}
        data["charges"] = [
            {k: c.get(k) for k in CHARGE_KEYS_WITHOUT_AMOUNTS} for c in stored.get("charges", [])
        ]
    data["amounts_included"] = fees
    if current_plan is not None:
        data["current_plan"] = plan(current_plan, locale=locale, fees=fees)
    data["target_plan"] = plan(target_plan, locale=locale, fees=fees)
    return data


def request(found: ContractRequest, *, actor: Actor, locale: str) -> dict[str, Any]:
    """A confirmed request (R-20, R-32): what was asked, the quote seen, who sent it and when."""
    return {
        "id": found.id,
        "reference": found.reference,
        "contract_id": found.contract_id,
        "kind": found.kind.value,
        "status": found.status.value,
        "notice_on": day(found.notice_on),
        "effective_on": day(found.effective_on),
        "quote": quote(
            found.quote,
            actor=actor,
            locale=locale,
            target_plan=found.target_plan,
            current_plan=found.from_plan,  # the plan when it was sent, whatever happened since
        ),
        "requested_at": instant(found.requested_at),
        "requested_by": {"id": found.requested_by.id, "name": found.requested_by.name},
        "via_api": found.via_api,
        "withdrawn_at": instant(found.withdrawn_at),
        "applied_at": instant(found.applied_at),
        "can_withdraw": can_request_changes(actor) and request_service.can_withdraw(found),
    }


def reading(found: UsageReading) -> dict[str, Any]:
    return {
        "id": found.id,
        "contract_id": found.contract_id,
        "used_gb": gigabytes(found.used_gb),
        "measured_at": instant(found.measured_at),
        "recorded_at": instant(found.recorded_at),
        "source": found.source.value,
    }


def usage(view: UsageView, *, actor: Actor, locale: str) -> dict[str, Any]:
    """R-15: the latest reading against the plan's capacity, and the plan that would fit."""
    return {
        "latest": reading(view.reading) if view.reading is not None else None,
        "capacity_gb": view.capacity_gb,
        "percent": view.percent,
        "over_capacity": view.over_capacity,
        "suggested_plan": plan(view.suggested, locale=locale, fees=can_see_fees(actor)),
    }


# --- incidents and SLA claims (R-50..R-53) ------------------------------------------------------


def incident_summary(version: IncidentVersion, *, locale: str) -> dict[str, Any]:
    """An incident's current facts (R-50): no amount, so the same for every caller."""
    return {
        "id": version.incident_id,
        "reference": version.incident.reference,
        "version": version.version,
        "kind": version.kind.value,
        "title": version.title(locale),
        "started_at": instant(version.started_at),
        "ended_at": instant(version.ended_at),
        "occurrence_announced_at": instant(version.occurrence_announced_at),
        "recovery_announced_at": instant(version.recovery_announced_at),
        "state": "open" if version.ended_at is None else "ended",
    }


def incident(view: IncidentView, *, locale: str, contract_ids: list[int] | None) -> dict[str, Any]:
    """An incident with its public updates, newest first; `contract_ids` are the caller's
    contracts it touched (None for staff, who see every incident: the key is left out)."""
    data = incident_summary(view.version, locale=locale)
    if contract_ids is not None:
        data["contract_ids"] = contract_ids
    data["updates"] = [
        {
            "status": update.status.value,
            "message": update.message(locale),
            "posted_at": instant(update.posted_at),
        }
        for update in view.updates
    ]
    return data


def compensation(computation: Computation, *, fees: bool) -> dict[str, Any]:
    """What an incident is worth to a contract (R-51), and until when it can be claimed
    (R-52); the reasoning is in the language of the answer."""
    data: dict[str, Any] = {
        "billing_month": computation.billing_month,
        "monthly_fee": computation.monthly_fee,
        "total_minutes": computation.total_minutes,
        "counted_minutes": computation.counted_minutes,
        "lines": [dict(line) for line in computation.lines],
        "subtotal": computation.subtotal,
        "amount": computation.amount,
        "claim_deadline": day(computation.claim_deadline),
        "reasoning": claim_service.explain(computation),
    }
    if not fees:
        data = {k: data[k] for k in COMPENSATION_KEYS_WITHOUT_AMOUNTS}
        data["lines"] = [
            {k: line.get(k) for k in COMPENSATION_LINE_KEYS_WITHOUT_AMOUNTS}
            for line in computation.lines
        ]
    data["amounts_included"] = fees
    return data


def claim_option(option: Option, *, actor: Actor, locale: str) -> dict[str, Any]:
    """One incident that touched the contract, as the contract's claims page shows it."""
    computation = option.computation
    return {
        "incident": incident_summary(option.version, locale=locale),
        "compensation": (
            compensation(computation, fees=can_see_fees(actor)) if computation else None
        ),
        "claimable": option.claimable,
        "refusal": (
            {
                "code": option.refusal,
                "message": claim_service.refusal_message(option.refusal, computation),
            }
            if option.refusal is not None
            else None
        ),
        "claim_id": option.claim.id if option.claim is not None else None,
    }


def claim(found: SlaClaim, *, actor: Actor) -> dict[str, Any]:
    """A claim as filed (R-52: the computation it keeps and the incident version it rests
    on), its review and the invoices that carried its credit (R-53)."""
    fees = can_see_fees(actor)
    data: dict[str, Any] = {
        "id": found.id,
        "number": found.number,
        "contract_id": found.contract_id,
        "incident_id": found.incident_id,
        "incident_version": found.incident_version.version,
        "billing_month": found.billing_month,
        "status": found.status.value,
        "computed_amount": found.computed_amount,
        "approved_amount": found.approved_amount,
        "credited_amount": found.credited_amount,
        "claimed_on": day(found.claimed_on),
        "channel": found.channel.value,
        "filed_at": instant(found.filed_at),
        "reviewed_at": instant(found.reviewed_at),
        "review_reason": found.review_reason,
        "compensation": compensation(Computation.of_claim(found), fees=fees),
    }
    if fees:
        data["invoices"] = [
            {"id": invoice.id, "number": invoice.number, "amount": amount}
            for invoice, amount in claim_service.invoices_of(found)
        ]
    else:
        data = {k: data[k] for k in CLAIM_KEYS_WITHOUT_AMOUNTS}
    data["amounts_included"] = fees
    return data
