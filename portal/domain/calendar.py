"""Billing months, terms and notice dates of a contract (RULES.md section 1 and R-30).

Pure functions over `datetime.date`. Nothing here knows what day it is: callers pass the
Tokyo business date (R-01) as `on`.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_ANCHOR_DAY = 21
RENEWAL_NOTICE_DAYS = 30
RENEWAL_MONTHS = 12
AGENCY_PERIOD_MONTHS = 6

# the anchor day must exist in every month, February included.
_MIN_ANCHOR_DAY = 1
_MAX_ANCHOR_DAY = 28
# the customer's notice must be at least this many days ahead.
_TERMINATION_NOTICE_DAYS = 30

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class BillingMonth:
    """R-02: one billing month, named by the month it ends in."""

    year: int
    month: int
    start: date
    end: date

    @property
    def name(self) -> str:
        """R-02: the month's name, e.g. "2026-12" for 2026-11-21 .. 2026-12-20."""
        return f"{self.year:04d}-{self.month:02d}"

    def __contains__(self, day: object) -> bool:
        """R-02: whether `day` falls in this billing month (bounds inclusive)."""
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Term:
    """R-04/R-05/R-06: one term of a contract, bounds inclusive; number 0 is the first."""

    start: date
    end: date
    number: int

    def __contains__(self, day: object) -> bool:
        """R-05: whether `day` falls in this term (bounds inclusive)."""
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class ContractCalendar:
    """R-03..R-06: the dates the portal shows for one contract on the day `on`."""

    service_start: date
    anchor_day: int
    term_anchor: date
    # R-04; None through an agency: IW 27(3) applies regardless of article 4 (R-06 reading).
    minimum_term_end: date | None
    in_minimum_term: bool
    current_term: Term
    renewal_notice_deadline: date | None
    days_to_notice_deadline: int | None
    next_renewal_start: date | None
    agency_renewal_due: date | None
    days_to_agency_renewal_due: int | None
    ended_on: date | None
    # the 6-month periods granted so far (the first, and one per renewal application
    # carried out); empty for a direct or sales-agent contract.
    agency_periods: tuple[Term, ...] = ()


def validate_anchor_day(anchor_day: int) -> int:
    """R-02: return `anchor_day` if it is a whole day 1..28, else raise ValueError."""
    # bool is an int subclass; True as an anchor day is a caller bug, not day 1.
    if (
        isinstance(anchor_day, bool)
        or not isinstance(anchor_day, int)
        or not _MIN_ANCHOR_DAY <= anchor_day <= _MAX_ANCHOR_DAY
    ):
        raise ValueError(
            f"anchor day must be {_MIN_ANCHOR_DAY}..{_MAX_ANCHOR_DAY}, got {anchor_day!r}"
        )
    return anchor_day


def add_billing_months(anchor: date, months: int) -> date:
    """R-02: the same anchor day `months` billing months later (or earlier if negative)."""
    if anchor.day > _MAX_ANCHOR_DAY:
        raise ValueError(f"{anchor.isoformat()} is not on an anchor day (1..{_MAX_ANCHOR_DAY})")
    index = anchor.year * 12 + (anchor.month - 1) + months
    return date(index // 12, index % 12 + 1, anchor.day)


def add_months_clamped(day: date, months: int) -> date:
    """The same day `months` calendar months later; a day that month lacks is its last day
    (2027-01-31 + 1 month = 2027-02-28)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, min(day.day, monthrange(year, month0 + 1)[1]))


def _whole_billing_months(start: date, on: date) -> int:
    """R-02: complete billing months from the anchor day `start` to `on` (on >= start)."""
    months = (on.year - start.year) * 12 + (on.month - start.month)
    # The month in progress only counts once `on` has reached its anchor day.
    return months - 1 if on.day < start.day else months


def billing_month_of(day: date, anchor_day: int = DEFAULT_ANCHOR_DAY) -> BillingMonth:
    """R-02: the billing month that contains `day`."""
    validate_anchor_day(anchor_day)
    start = date(day.year, day.month, anchor_day)
    if day < start:
        start = add_billing_months(start, -1)
    return _billing_month_starting(start)


def _billing_month_starting(start: date) -> BillingMonth:
    """R-02: the billing month that begins on the anchor day `start`."""
    end = add_billing_months(start, 1) - _ONE_DAY
    return BillingMonth(year=end.year, month=end.month, start=start, end=end)


def billing_month_named(
    year: int, month: int, anchor_day: int = DEFAULT_ANCHOR_DAY
) -> BillingMonth:
    """R-02: the billing month named "year-month", i.e. the one that ends in that month."""
    validate_anchor_day(anchor_day)
    # Anchor day 1 ends the month on its last calendar day; any other ends it on day d-1.
    first_day = 1 if anchor_day == 1 else anchor_day - 1
    return billing_month_of(date(year, month, first_day), anchor_day)


def is_anchor_day(day: date, anchor_day: int) -> bool:
    """R-02: whether a billing month starts on `day`."""
    return day.day == validate_anchor_day(anchor_day)


def is_month_end(day: date, anchor_day: int) -> bool:
    """R-30: whether `day` is the last day of a billing month (the day before an anchor day)."""
    return is_anchor_day(day + _ONE_DAY, anchor_day)


def term_anchor(service_start: date, anchor_day: int) -> date:
    """R-03: the first anchor day on or after the service start."""
    validate_anchor_day(anchor_day)
    anchor = date(service_start.year, service_start.month, anchor_day)
    return anchor if anchor >= service_start else add_billing_months(anchor, 1)


def minimum_term_end(term_anchor: date, minimum_months: int) -> date:
    """R-04: the last day of the minimum term, E = A + M billing months - 1 day."""
    if minimum_months < 1:
        raise ValueError(f"minimum months must be at least 1, got {minimum_months}")
    return add_billing_months(term_anchor, minimum_months) - _ONE_DAY


def renewal_term(minimum_term_end: date, number: int) -> Term:
    """R-05: renewal term `number` (>= 1), 12 billing months each, following E."""
    if number < 1:
        raise ValueError(f"renewal terms are numbered from 1, got {number}")
    start = add_billing_months(minimum_term_end + _ONE_DAY, RENEWAL_MONTHS * (number - 1))
    end = add_billing_months(start, RENEWAL_MONTHS) - _ONE_DAY
    return Term(start=start, end=end, number=number)


def current_term(term_anchor: date, minimum_months: int, on: date) -> Term:
    """R-05: the term containing `on`, assuming every renewal happened (minimum term if on <= E)."""
    end = minimum_term_end(term_anchor, minimum_months)
    if on <= end:
        # Lead-in days before A belong to no billing term; show the minimum term.
        return Term(start=term_anchor, end=end, number=0)
    elapsed = _whole_billing_months(end + _ONE_DAY, on)
    return renewal_term(end, elapsed // RENEWAL_MONTHS + 1)


def renewal_notice_deadline(term_end: date) -> date:
    """R-05: the last day notice against renewal may be given for a term ending `term_end`."""
    return term_end - timedelta(days=RENEWAL_NOTICE_DAYS)


def agency_period(term_anchor: date, index: int) -> Term:
    """R-06: the 6-billing-month period number `index` (from 0) of an agency contract."""
    if index < 0:
        raise ValueError(f"agency periods are numbered from 0, got {index}")
    start = add_billing_months(term_anchor, AGENCY_PERIOD_MONTHS * index)
    end = add_billing_months(start, AGENCY_PERIOD_MONTHS) - _ONE_DAY
    return Term(start=start, end=end, number=index)


def current_agency_period(term_anchor: date, on: date) -> Term:
    """R-06: the agency period containing `on` (period 0 for lead-in days before A)."""
    if on < term_anchor:
        return agency_period(term_anchor, 0)
    return agency_period(
        term_anchor, _whole_billing_months(term_anchor, on) // AGENCY_PERIOD_MONTHS
    )


def earliest_termination(notice_date: date, anchor_day: int) -> date:
    """R-30: the first month end on or after notice date + 30 days."""
    # Every day lies in exactly one billing month, whose end is the first month end >= it.
    target = notice_date + timedelta(days=_TERMINATION_NOTICE_DAYS)
    return billing_month_of(target, anchor_day).end


def contract_calendar(
    *,
    service_start: date,
    anchor_day: int,
    minimum_months: int,
    on: date,
    via_agency: bool = False,
    agency_periods_granted: int | None = None,
    ended_on: date | None = None,
) -> ContractCalendar:
    """R-03..R-06: the anchor, minimum term, current term and deadlines of one contract."""
    anchor = term_anchor(service_start, anchor_day)
    min_end = None if via_agency else minimum_term_end(anchor, minimum_months)
    periods: tuple[Term, ...] = ()
    # An ended contract stays in the term it ended in; it does not renew afterwards.
    as_of = min(on, ended_on) if ended_on is not None else on

    notice_deadline: date | None = None
    days_to_notice: int | None = None
    next_renewal: date | None = None
    agency_due: date | None = None
    days_to_agency_due: int | None = None

    if via_agency:
        granted = 1 if agency_periods_granted is None else agency_periods_granted
        if granted < 1:
            raise ValueError(f"an agency contract has at least 1 granted period, got {granted}")
        # without a renewal application the contract ends with the last granted period.
        index = min(current_agency_period(anchor, as_of).number, granted - 1)
        term = agency_period(anchor, index)
        periods = tuple(agency_period(anchor, i) for i in range(granted))
        if ended_on is None:
            agency_due = agency_period(anchor, granted - 1).end
            days_to_agency_due = (agency_due - on).days
    else:
        term = current_term(anchor, minimum_months, as_of)
        if ended_on is None:
            notice_deadline = renewal_notice_deadline(term.end)
            days_to_notice = (notice_deadline - on).days
            next_renewal = term.end + _ONE_DAY

    return ContractCalendar(
        service_start=service_start,
        anchor_day=anchor_day,
        term_anchor=anchor,
        minimum_term_end=min_end,
        in_minimum_term=min_end is not None and on <= min_end,
        current_term=term,
        renewal_notice_deadline=notice_deadline,
        days_to_notice_deadline=days_to_notice,
        next_renewal_start=next_renewal,
        agency_renewal_due=agency_due,
        days_to_agency_renewal_due=days_to_agency_due,
        ended_on=ended_on,
        agency_periods=periods,
    )
