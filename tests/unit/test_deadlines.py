"""What a contract's holder must act by, as the home page lists it (R-05, R-06, R-23)."""

from datetime import date

from portal.domain.calendar import contract_calendar
from portal.domain.deadlines import Deadline, DeadlineKind, deadlines_of, week_ahead
from portal.domain.quotes import RequestKind

MARCH_1 = date(2027, 3, 1)


def _w1(on: date = MARCH_1, **agency: object):
    """W-1's contract (S = 2026-11-05, anchor day 21, M = 12), or an agency's (R-06)."""
    return contract_calendar(
        service_start=date(2026, 11, 5), anchor_day=21, minimum_months=12, on=on, **agency
    )


def test_w1_the_notice_against_renewal_is_due_2027_10_21():
    assert deadlines_of(_w1(), MARCH_1) == [
        Deadline(DeadlineKind.RENEWAL_NOTICE, date(2027, 10, 21), 234)
    ]


def test_a_deadline_passed_is_left_out():
    assert deadlines_of(_w1(date(2027, 10, 22)), date(2027, 10, 22)) == []


def test_a_request_that_ends_the_contract_leaves_no_renewal_deadline():
    """R-05/R-30: the customer has given notice; only the last day remains."""
    for kind in (RequestKind.CANCELLATION, RequestKind.NON_RENEWAL, RequestKind.DOWNGRADE):
        found = deadlines_of(_w1(), MARCH_1, (kind, date(2027, 4, 20)))
        assert found == [Deadline(DeadlineKind.REQUEST, date(2027, 4, 20), 50, kind)]


def test_a_pending_upgrade_keeps_the_renewal_deadline_after_it():
    found = deadlines_of(_w1(), MARCH_1, (RequestKind.UPGRADE, date(2027, 3, 15)))
    assert [(d.kind, d.on, d.urgent) for d in found] == [
        (DeadlineKind.REQUEST, date(2027, 3, 15), True),
        (DeadlineKind.RENEWAL_NOTICE, date(2027, 10, 21), False),
    ]


def test_an_agency_contract_is_due_its_renewal_application_unless_one_is_pending():
    """R-06: the first period of W-1 through an agency ends 2027-05-20."""
    due = [Deadline(DeadlineKind.AGENCY_RENEWAL, date(2027, 5, 20), 80)]
    assert deadlines_of(_w1(via_agency=True), MARCH_1) == due
    applied = (RequestKind.AGENCY_RENEWAL, date(2027, 5, 21))
    assert [d.kind for d in deadlines_of(_w1(via_agency=True), MARCH_1, applied)] == [
        DeadlineKind.REQUEST
    ]


def test_the_week_ahead_is_seven_days_from_today():
    assert week_ahead(MARCH_1) == (MARCH_1, date(2027, 3, 7))
