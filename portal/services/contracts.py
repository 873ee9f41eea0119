"""Reading contracts: their history, including the renewals the calendar implies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.domain import calendar
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import AccountEntry, Contract, ContractRequest, Organisation, SalesChannel
from portal.paging import Page, paginate
from portal.permissions import Actor, contracts_visible


@dataclass(frozen=True)
class Outlook:
    """What will happen to a contract, and when, given its pending request (R-05, R-06, R-23).

    The calendar alone says the contract renews (R-05) or that its renewal application is due
    (R-06); a pending request may make either untrue, and the pages must not say it then.
    """

    request: ContractRequest | None = None

    @property
    def ends_on(self) -> date | None:
        """The last day, when a pending cancellation, notice or downgrade ends the contract."""
        if self.request is not None and self.request.kind.ends_contract:
            return self.request.effective_on
        return None

    @property
    def plan_changes_on(self) -> date | None:
        """The day a pending upgrade switches the plan (R-21)."""
        if self.request is not None and self.request.kind == RequestKind.UPGRADE:
            return self.request.effective_on
        return None

    @property
    def next_period(self) -> calendar.Term | None:
        """The period a pending agency renewal application asks for (R-06)."""
        if self.request is None or self.request.kind != RequestKind.AGENCY_RENEWAL:
            return None
        return self.request.confirmed_quote().next_period

    @property
    def renews(self) -> bool:
        """Whether the renewal date and the notice deadline of the calendar still hold."""
        return self.ends_on is None

    @property
    def renewal_application_due(self) -> bool:
        """Whether an agency contract still needs its renewal application (R-06)."""
        return self.ends_on is None and self.next_period is None


def outlook(request: ContractRequest | None) -> Outlook:
    return Outlook(request)


@dataclass(frozen=True)
class HistoryItem:
    on: date
    kind: str
    details: dict[str, Any] = field(default_factory=dict)


def with_plan_and_service(query: sa.Select[tuple[Contract]]) -> sa.Select[tuple[Contract]]:
    """Load what every contract listing shows in the contracts' own statement (issue 15):
    plan, service, partner company and the pending request (R-23: at most one)."""
    return query.options(
        joinedload(Contract.plan),
        joinedload(Contract.service),
        joinedload(Contract.partner),
        joinedload(Contract.pending_request),
    )


CONTRACTS_PER_PAGE = 20  # issue 15: each card carries its calendar


def _in_list_order(actor: Actor) -> sa.Select[tuple[Contract]]:
    """Running contracts first, by service start; the id last, so that pages never overlap."""
    query = contracts_visible(actor).order_by(Contract.status, Contract.service_start, Contract.id)
    return with_plan_and_service(query)


def contracts_page(actor: Actor, page: int) -> Page[Contract]:
    """One page of the contracts the actor sees (issue 15)."""
    return paginate(_in_list_order(actor), page, CONTRACTS_PER_PAGE)


def with_calendars(
    contracts: list[Contract], today: date
) -> list[tuple[Contract, calendar.ContractCalendar]]:
    """Each contract with where it stands today (R-03..R-06), as every listing shows it."""
    return [(contract, contract.calendar(today)) for contract in contracts]


def contracts_of_organisations(organisation_ids: list[int]) -> list[Contract]:
    query = (
        sa.select(Contract)
        .where(Contract.organisation_id.in_(organisation_ids))
        .order_by(Contract.organisation_id, Contract.service_start)
    )
    return list(db.session.scalars(with_plan_and_service(query)))


def history(contract: Contract, today: date) -> list[HistoryItem]:
    """Recorded events, plus each renewal (R-05) or agency period (R-06) that has begun."""
    items = [HistoryItem(e.effective_on, e.kind, dict(e.details)) for e in contract.events]
    cal = contract.calendar(today)
    anchor = cal.term_anchor
    items.append(HistoryItem(anchor, "term_anchor"))
    if contract.sales_channel == SalesChannel.AGENCY:
        for index in range(1, cal.current_term.number + 1):
            period = calendar.agency_period(anchor, index)
            items.append(
                HistoryItem(
                    period.start, "agency_period", {"start": period.start, "end": period.end}
                )
            )
    else:
        for number in range(1, cal.current_term.number + 1):
            term = calendar.renewal_term(cal.minimum_term_end, number)
            items.append(HistoryItem(term.start, "renewed", {"start": term.start, "end": term.end}))
    if contract.ended_on is not None and not any(i.kind == "ended" for i in items):
        items.append(HistoryItem(contract.ended_on, "ended"))
    return sorted(items, key=lambda i: (i.on, i.kind))


def access_records(organisation: Organisation, *, limit: int = 200) -> list[AccountEntry]:
    """R-72/R-73: who entered this organisation's portal, when and why."""
    return list(
        db.session.scalars(
            sa.select(AccountEntry)
            .where(AccountEntry.organisation_id == organisation.id)
            .order_by(AccountEntry.started_at.desc())
            .limit(limit)
        )
    )
