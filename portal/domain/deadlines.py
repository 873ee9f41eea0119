"""The dates a contract's holder must act by, as the home page lists them (R-05, R-06, R-23).

Pure functions over the contract calendar: nothing here knows what day it is; `on` is the
Tokyo business date (R-01).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from portal.domain.calendar import ContractCalendar
from portal.domain.quotes import RequestKind

URGENT_DAYS = 30  # a deadline this close is marked urgent, as the contract calendar marks it
WEEK_DAYS = 7


class DeadlineKind(enum.StrEnum):
    RENEWAL_NOTICE = "renewal_notice"  # the last day to give notice against renewal
    AGENCY_RENEWAL = "agency_renewal"  # the renewal application is due
    REQUEST = "request"  # a pending request takes effect


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    on: date
    days_left: int
    request_kind: RequestKind | None = None  # for kind REQUEST

    @property
    def urgent(self) -> bool:
        return self.days_left <= URGENT_DAYS


def deadlines_of(
    cal: ContractCalendar, on: date, pending: tuple[RequestKind, date] | None = None
) -> list[Deadline]:
    """What a running contract's holder must act by, from `on`, soonest first.

    `pending` is the contract's pending request (R-23) as (kind, effective date). A request
    that ends the contract is the customer's notice: no renewal deadline remains (R-05, R-30);
    a pending agency renewal application is the application the due date asks for (R-06).
    Deadlines already passed are left out.
    """
    found: list[Deadline] = []
    settled = False
    if pending is not None:
        kind, effective_on = pending
        found.append(Deadline(DeadlineKind.REQUEST, effective_on, (effective_on - on).days, kind))
        settled = kind.ends_contract or kind == RequestKind.AGENCY_RENEWAL
    if not settled:
        if cal.renewal_notice_deadline is not None:
            found.append(_deadline(DeadlineKind.RENEWAL_NOTICE, cal.renewal_notice_deadline, on))
        if cal.agency_renewal_due is not None:
            found.append(_deadline(DeadlineKind.AGENCY_RENEWAL, cal.agency_renewal_due, on))
    return sorted((d for d in found if d.days_left >= 0), key=lambda d: (d.on, d.kind))


def _deadline(kind: DeadlineKind, day: date, on: date) -> Deadline:
    return Deadline(kind, day, (day - on).days)


def week_ahead(on: date) -> tuple[date, date]:
    """The seven days from `on`, both ends included: what staff see as "this week"."""
    return on, on + timedelta(days=WEEK_DAYS - 1)
