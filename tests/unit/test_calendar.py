"""Rules R-02..R-06 and R-30 of RULES.md, as examples and as properties."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.calendar import (
    AGENCY_PERIOD_MONTHS,
    DEFAULT_ANCHOR_DAY,
    RENEWAL_MONTHS,
    RENEWAL_NOTICE_DAYS,
    BillingMonth,
    Term,
    add_billing_months,
    agency_period,
    billing_month_named,
    billing_month_of,
    contract_calendar,
    current_agency_period,
    current_term,
    earliest_termination,
    is_anchor_day,
    is_month_end,
    minimum_term_end,
    renewal_notice_deadline,
    renewal_term,
    term_anchor,
    validate_anchor_day,
)

ONE_DAY = timedelta(days=1)

days = st.dates(min_value=date(1999, 1, 1), max_value=date(2100, 12, 31))
anchor_days = st.integers(min_value=1, max_value=28)
minimum_months = st.integers(min_value=1, max_value=60)


def _month_index(month: BillingMonth) -> int:
    return month.year * 12 + month.month


# --- W-1 ---------------------------------------------------------------------------------


def test_w1_worked_example():
    """W-1: S=2026-11-05, anchor 21, M=12."""
    anchor = term_anchor(date(2026, 11, 5), 21)
    assert anchor == date(2026, 11, 21)
    end = minimum_term_end(anchor, 12)
    assert end == date(2027, 11, 20)
    assert renewal_notice_deadline(end) == date(2027, 10, 21)
    assert renewal_term(end, 1) == Term(date(2027, 11, 21), date(2028, 11, 20), 1)

    cal = contract_calendar(
        service_start=date(2026, 11, 5), anchor_day=21, minimum_months=12, on=date(2027, 3, 1)
    )
    assert cal.term_anchor == date(2026, 11, 21)
    assert cal.minimum_term_end == date(2027, 11, 20)
    assert cal.in_minimum_term
    assert cal.current_term == Term(date(2026, 11, 21), date(2027, 11, 20), 0)
    assert cal.renewal_notice_deadline == date(2027, 10, 21)
    assert cal.days_to_notice_deadline == (date(2027, 10, 21) - date(2027, 3, 1)).days
    assert cal.next_renewal_start == date(2027, 11, 21)
    assert cal.agency_renewal_due is None
    assert cal.days_to_agency_renewal_due is None
    assert cal.ended_on is None


# --- R-02 billing month ------------------------------------------------------------------


def test_r02_billing_month_named_by_the_month_it_ends_in():
    month = billing_month_named(2026, 12)
    assert (month.start, month.end) == (date(2026, 11, 21), date(2026, 12, 20))
    assert month.name == "2026-12"
    assert DEFAULT_ANCHOR_DAY == 21


def test_r02_boundary_20th_and_21st():
    assert billing_month_of(date(2026, 12, 20)).name == "2026-12"
    assert billing_month_of(date(2026, 12, 21)).name == "2027-01"
    assert billing_month_of(date(2026, 11, 21)).name == "2026-12"
    assert billing_month_of(date(2026, 11, 20)).name == "2026-11"
    assert date(2026, 12, 20) in billing_month_named(2026, 12)
    assert date(2026, 12, 21) not in billing_month_named(2026, 12)
    assert date(2026, 11, 20) not in billing_month_named(2026, 12)


def test_r02_year_rollover():
    january = billing_month_named(2027, 1)
    assert (january.start, january.end) == (date(2026, 12, 21), date(2027, 1, 20))
    assert billing_month_of(date(2026, 12, 31)) == january
    december = billing_month_of(date(2027, 12, 1))
    assert december.name == "2027-12"
    assert (december.start, december.end) == (date(2027, 11, 21), date(2027, 12, 20))


def test_r02_anchor_day_1_gives_calendar_months():
    february = billing_month_named(2028, 2, anchor_day=1)
    assert (february.start, february.end) == (date(2028, 2, 1), date(2028, 2, 29))
    december = billing_month_of(date(2026, 12, 31), anchor_day=1)
    assert (december.name, december.start, december.end) == (
        "2026-12",
        date(2026, 12, 1),
        date(2026, 12, 31),
    )


def test_r02_anchor_day_and_month_end():
    assert is_anchor_day(date(2026, 11, 21), 21)
    assert not is_anchor_day(date(2026, 11, 20), 21)
    assert is_month_end(date(2026, 11, 20), 21)
    assert is_month_end(date(2028, 2, 29), 1)
    assert not is_month_end(date(2028, 2, 28), 1)


# --- R-03 term anchor --------------------------------------------------------------------


def test_r03_start_on_anchor_day_is_its_own_anchor():
    assert term_anchor(date(2026, 11, 21), 21) == date(2026, 11, 21)


def test_r03_start_after_anchor_day_goes_to_next_month():
    assert term_anchor(date(2026, 11, 22), 21) == date(2026, 12, 21)
    assert term_anchor(date(2026, 12, 22), 21) == date(2027, 1, 21)


# --- minimum term and renewal ------------------------------------------------


def test_r04_minimum_term_end():
    assert minimum_term_end(date(2026, 11, 21), 1) == date(2026, 12, 20)
    assert minimum_term_end(date(2026, 11, 21), 12) == date(2027, 11, 20)


def test_r05_current_term_rolls_after_minimum_term_end():
    anchor = date(2026, 11, 21)
    assert current_term(anchor, 12, date(2026, 11, 5)).number == 0  # lead-in day before A
    assert current_term(anchor, 12, date(2027, 11, 20)).number == 0
    first = current_term(anchor, 12, date(2027, 11, 21))
    assert first == Term(date(2027, 11, 21), date(2028, 11, 20), 1)
    assert current_term(anchor, 12, date(2028, 11, 20)) == first
    assert current_term(anchor, 12, date(2028, 11, 21)) == Term(
        date(2028, 11, 21), date(2029, 11, 20), 2
    )


def test_r05_notice_deadline_30_days_before_each_term_end():
    start = date(2026, 11, 5)
    for on, deadline in [
        (date(2027, 11, 20), date(2027, 10, 21)),
        (date(2027, 11, 21), date(2028, 10, 21)),
        (date(2029, 1, 1), date(2029, 10, 21)),
    ]:
        cal = contract_calendar(service_start=start, anchor_day=21, minimum_months=12, on=on)
        assert cal.renewal_notice_deadline == deadline
        assert cal.current_term.end - cal.renewal_notice_deadline == timedelta(
            days=RENEWAL_NOTICE_DAYS
        )
        assert cal.next_renewal_start == cal.current_term.end + ONE_DAY
    assert not cal.in_minimum_term


def test_r05_deadline_passed_is_reported_negative():
    cal = contract_calendar(
        service_start=date(2026, 11, 5), anchor_day=21, minimum_months=12, on=date(2027, 11, 1)
    )
    assert cal.renewal_notice_deadline == date(2027, 10, 21)
    assert cal.days_to_notice_deadline == -11


def test_r05_ended_contract_has_no_renewal_dates():
    cal = contract_calendar(
        service_start=date(2026, 11, 5),
        anchor_day=21,
        minimum_months=12,
        on=date(2029, 1, 1),
        ended_on=date(2027, 11, 20),
    )
    assert cal.current_term.number == 0
    assert cal.renewal_notice_deadline is None
    assert cal.days_to_notice_deadline is None
    assert cal.next_renewal_start is None
    assert cal.ended_on == date(2027, 11, 20)


# --- R-06 agency contracts ---------------------------------------------------------------


def test_r06_agency_periods_are_six_billing_months():
    anchor = date(2026, 11, 21)
    assert agency_period(anchor, 0) == Term(date(2026, 11, 21), date(2027, 5, 20), 0)
    assert agency_period(anchor, 1) == Term(date(2027, 5, 21), date(2027, 11, 20), 1)
    assert current_agency_period(anchor, date(2026, 11, 5)).number == 0
    assert current_agency_period(anchor, date(2027, 5, 21)).number == 1
    assert AGENCY_PERIOD_MONTHS == 6


def test_r06_agency_renewal_due_and_no_auto_renewal():
    common = dict(service_start=date(2026, 11, 5), anchor_day=21, minimum_months=12)
    first = contract_calendar(**common, on=date(2027, 3, 1), via_agency=True)
    assert first.current_term == Term(date(2026, 11, 21), date(2027, 5, 20), 0)
    assert first.agency_renewal_due == date(2027, 5, 20)
    assert first.days_to_agency_renewal_due == (date(2027, 5, 20) - date(2027, 3, 1)).days
    assert first.renewal_notice_deadline is None
    assert first.days_to_notice_deadline is None
    assert first.next_renewal_start is None
    # R-06 reading: IW 27(3) applies regardless of article 4, so no minimum term (not
    # 2027-11-20, which the plan's 12 months would give), and the periods granted instead.
    assert first.minimum_term_end is None
    assert first.in_minimum_term is False
    assert first.agency_periods == (Term(date(2026, 11, 21), date(2027, 5, 20), 0),)

    renewed = contract_calendar(
        **common, on=date(2027, 3, 1), via_agency=True, agency_periods_granted=2
    )
    assert renewed.current_term.number == 0
    assert renewed.agency_renewal_due == date(2027, 11, 20)
    assert renewed.agency_periods == (
        Term(date(2026, 11, 21), date(2027, 5, 20), 0),
        Term(date(2027, 5, 21), date(2027, 11, 20), 1),
    )
    direct = contract_calendar(**common, on=date(2027, 3, 1))
    assert (direct.minimum_term_end, direct.agency_periods) == (date(2027, 11, 20), ())

    # No application for a second period: the contract does not roll into it.
    lapsed = contract_calendar(**common, on=date(2027, 6, 1), via_agency=True)
    assert lapsed.current_term.number == 0
    assert lapsed.days_to_agency_renewal_due == -12

    ended = contract_calendar(
        **common, on=date(2027, 6, 1), via_agency=True, ended_on=date(2027, 5, 20)
    )
    assert ended.agency_renewal_due is None
    assert ended.days_to_agency_renewal_due is None


# --- R-30 earliest termination -----------------------------------------------------------


def test_r30_w2_earliest_termination():
    assert earliest_termination(date(2027, 3, 1), 21) == date(2027, 4, 20)


def test_r30_notice_plus_30_on_a_month_end_is_that_month_end():
    # 2027-03-21 + 30 days = 2027-04-20, itself a month end for anchor day 21.
    assert earliest_termination(date(2027, 3, 21), 21) == date(2027, 4, 20)
    # One day later misses it and runs to the next month end.
    assert earliest_termination(date(2027, 3, 22), 21) == date(2027, 5, 20)


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 29, -1, 31])
def test_r02_anchor_day_outside_1_to_28_rejected(bad):
    with pytest.raises(ValueError):
        validate_anchor_day(bad)
    with pytest.raises(ValueError):
        term_anchor(date(2026, 11, 5), bad)
    with pytest.raises(ValueError):
        billing_month_of(date(2026, 11, 5), bad)


def test_r02_anchor_days_1_and_28_accepted():
    assert validate_anchor_day(1) == 1
    assert validate_anchor_day(28) == 28


def test_r04_minimum_months_zero_rejected():
    with pytest.raises(ValueError):
        minimum_term_end(date(2026, 11, 21), 0)
    with pytest.raises(ValueError):
        contract_calendar(
            service_start=date(2026, 11, 5), anchor_day=21, minimum_months=0, on=date(2027, 1, 1)
        )


def test_r02_add_billing_months_needs_an_anchor_day():
    with pytest.raises(ValueError):
        add_billing_months(date(2026, 1, 29), 1)


def test_r05_renewal_term_numbers_start_at_1():
    with pytest.raises(ValueError):
        renewal_term(date(2027, 11, 20), 0)


# --- properties --------------------------------------------------------------------------


@given(days, anchor_days)
def test_r03_property_anchor_is_first_anchor_day_on_or_after_start(start, anchor_day):
    anchor = term_anchor(start, anchor_day)
    assert is_anchor_day(anchor, anchor_day)
    assert anchor >= start
    assert (anchor - start).days < 31
    day = start
    while day < anchor:
        assert not is_anchor_day(day, anchor_day)
        day += ONE_DAY


@given(days, anchor_days, minimum_months)
def test_r04_r05_r06_property_every_term_ends_on_a_month_end(start, anchor_day, months):
    anchor = term_anchor(start, anchor_day)
    end = minimum_term_end(anchor, months)
    assert is_month_end(end, anchor_day)
    for number in range(1, 4):
        assert is_month_end(renewal_term(end, number).end, anchor_day)
    for index in range(4):
        assert is_month_end(agency_period(anchor, index).end, anchor_day)


@given(days, anchor_days, minimum_months)
def test_r05_property_renewals_keep_alignment(start, anchor_day, months):
    anchor = term_anchor(start, anchor_day)
    end = minimum_term_end(anchor, months)
    previous_end = end
    for number in range(1, 4):
        term = renewal_term(end, number)
        assert term.start == previous_end + ONE_DAY
        assert is_anchor_day(term.start, anchor_day)
        first = billing_month_of(term.start, anchor_day)
        last = billing_month_of(term.end, anchor_day)
        assert first.start == term.start
        assert last.end == term.end
        assert _month_index(last) - _month_index(first) + 1 == RENEWAL_MONTHS
        previous_end = term.end


@given(days, anchor_days, minimum_months, st.integers(min_value=0, max_value=3650))
def test_r05_r06_property_current_term_contains_on(start, anchor_day, months, offset):
    anchor = term_anchor(start, anchor_day)
    on = anchor + timedelta(days=offset)
    term = current_term(anchor, months, on)
    assert term.start <= on <= term.end
    end = minimum_term_end(anchor, months)
    assert (term.number == 0) == (on <= end)
    if term.number:
        assert term == renewal_term(end, term.number)
    period = current_agency_period(anchor, on)
    assert period.start <= on <= period.end
    assert period == agency_period(anchor, period.number)


@given(days, anchor_days)
def test_r02_property_billing_month_of_contains_day(day, anchor_day):
    month = billing_month_of(day, anchor_day)
    assert day in month
    assert is_anchor_day(month.start, anchor_day)
    assert is_month_end(month.end, anchor_day)
    assert (month.end.year, month.end.month) == (month.year, month.month)
    assert billing_month_named(month.year, month.month, anchor_day) == month
    following = billing_month_of(day + ONE_DAY, anchor_day)
    assert following == month or following.start == month.end + ONE_DAY


@given(days, anchor_days)
def test_r30_property_earliest_termination_is_first_month_end_after_30_days(notice, anchor_day):
    earliest = earliest_termination(notice, anchor_day)
    floor = notice + timedelta(days=30)
    assert is_month_end(earliest, anchor_day)
    assert earliest >= floor
    day = floor
    while day < earliest:
        assert not is_month_end(day, anchor_day)
        day += ONE_DAY
    assert (earliest - floor).days < 31


@given(days, anchor_days, st.integers(min_value=-1200, max_value=1200))
def test_r02_property_add_billing_months_round_trips(day, anchor_day, months):
    anchor = date(day.year, day.month, anchor_day)
    later = add_billing_months(anchor, months)
    assert later.day == anchor_day
    assert add_billing_months(later, -months) == anchor
