"""Rules R-50..R-52 of RULES.md: maintenance windows, counted downtime, compensation per
billing month and the claim window, as the worked example W-4 and as properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain import sla
from portal.domain.calendar import billing_month_named
from portal.domain.sla import (
    TOKYO,
    ClaimRefusal,
    CompensationKind,
    Incident,
    IncidentKind,
    Window,
    WindowKind,
)


def jst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=TOKYO)


W4_START = jst(2027, 2, 3, 9, 0)
W4_END = jst(2027, 2, 4, 15, 0)
FEE = 50_000


def w4(recovery_after: int = 90, occurrence_after: int | None = 20) -> Incident:
    """W-4: an unannounced (unplanned) outage of 30 hours."""
    return Incident(
        kind=IncidentKind.OUTAGE,
        started_at=W4_START,
        ended_at=W4_END,
        occurrence_announced_at=(
            None if occurrence_after is None else W4_START + timedelta(minutes=occurrence_after)
        ),
        recovery_announced_at=W4_END + timedelta(minutes=recovery_after),
    )


def windows_for(incident: Incident) -> list[Window]:
    return sla.regular_windows(incident.started_at, incident.ended_at)


# --- the worked example ----------------------------------------------------------------------


def test_w4_outage_of_30_hours_earns_2083():
    """W-4: ¥50,000 x 30 / 720 = ¥2,083.33 -> ¥2,083 (recovery announced in time)."""
    incident = w4(recovery_after=30)
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21, windows=windows_for(incident))
    assert result.counted_minutes == 1_800
    assert [(line.kind, line.amount, line.minutes) for line in result.lines] == [
        (CompensationKind.OUTAGE, 2_083, 1_800)
    ]
    assert result.amount == 2_083
    assert result.billing_month.name == "2027-02"


def test_w4_late_recovery_notice_adds_1666():
    """W-4: recovery announced 90 minutes after the end adds floor(¥50,000 / 30) = ¥1,666."""
    incident = w4(recovery_after=90)
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21, windows=windows_for(incident))
    assert [(line.kind, line.amount) for line in result.lines] == [
        (CompensationKind.OUTAGE, 2_083),
        (CompensationKind.LATE_ANNOUNCEMENT, 1_666),
    ]
    late = result.lines[1]
    assert (late.late_occurrence, late.late_recovery) == (False, True)
    assert result.amount == 3_749


def test_w4_claimable_until_2027_05_04():
    """W-4: claimable until 2027-05-04 (three months after the end, inclusive)."""
    incident = w4()
    assert sla.claim_deadline(incident.ended_at) == date(2027, 5, 4)
    assert sla.claim_refusal(incident, date(2027, 5, 4)) is None
    assert sla.claim_refusal(incident, date(2027, 5, 5)) == ClaimRefusal.WINDOW_CLOSED
    assert sla.claim_refusal(incident, date(2027, 2, 4)) is None
    assert sla.claim_refusal(incident, date(2027, 2, 3)) == ClaimRefusal.BEFORE_END


def test_late_occurrence_and_recovery_pay_once_per_incident():
    """R-51 reading: F/30 once per incident, however many of its notices were late."""
    incident = w4(recovery_after=90, occurrence_after=None)
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21)
    late = [line for line in result.lines if line.kind == CompensationKind.LATE_ANNOUNCEMENT]
    assert len(late) == 1 and (late[0].late_occurrence, late[0].late_recovery) == (True, True)
    assert result.amount == 2_083 + 1_666


def test_announcements_exactly_60_minutes_late_are_in_time():
    incident = w4(recovery_after=60, occurrence_after=60)
    assert sla.late_announcements(incident) is None


# --- maintenance windows (R-50) ----------------------------------------------------------------


def test_regular_windows_are_first_and_third_monday_two_to_six():
    windows = sla.regular_windows(jst(2027, 2, 1, 0, 0), jst(2027, 3, 1, 0, 0))
    assert [(w.start, w.end) for w in windows] == [
        (jst(2027, 2, 1, 2, 0), jst(2027, 2, 1, 6, 0)),
        (jst(2027, 2, 15, 2, 0), jst(2027, 2, 15, 6, 0)),
    ]
    assert {w.kind for w in windows} == {WindowKind.REGULAR}
    assert sla.nth_monday(2026, 12, 1) == date(2026, 12, 7)
    assert sla.nth_monday(2026, 12, 3) == date(2026, 12, 21)


def test_an_outage_across_a_regular_window_counts_the_minutes_outside_it():
    """R-50: 2027-02-14 20:00 to 2027-02-16 02:00 is 30 h, of which 4 h are the window of
    Monday 15 February: 26 h = 1,560 minutes count."""
    incident = Incident(IncidentKind.OUTAGE, jst(2027, 2, 14, 20, 0), jst(2027, 2, 16, 2, 0))
    windows = windows_for(incident)
    assert len(windows) == 1
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21, windows=windows)
    assert (result.total_minutes, result.counted_minutes) == (1_800, 1_560)
    assert result.lines[0].amount == FEE * 1_560 // 43_200 == 1_805


def test_maintenance_announced_in_advance_is_a_window_up_to_its_announced_end():
    """R-50: announced maintenance does not count; its overrun counts from the announced end."""
    window = sla.announced_window(
        jst(2027, 2, 10, 0, 0), jst(2027, 2, 10, 8, 0), announced_at=jst(2027, 2, 1, 10, 0)
    )
    assert window is not None and window.kind == WindowKind.ANNOUNCED
    overrun = Incident(IncidentKind.OUTAGE, jst(2027, 2, 10, 0, 0), jst(2027, 2, 11, 9, 0))
    assert sla.counted_minutes(overrun.started_at, overrun.ended_at, [window]) == 25 * 60


def test_unannounced_maintenance_counts_in_full():
    """R-50: maintenance announced only after it started is no window at all."""
    assert (
        sla.announced_window(
            jst(2027, 2, 10, 0, 0), jst(2027, 2, 10, 8, 0), announced_at=jst(2027, 2, 10, 0, 5)
        )
        is None
    )
    assert sla.announced_window(jst(2027, 2, 10, 0, 0), jst(2027, 2, 10, 8, 0), None) is None


def test_overlapping_windows_count_once():
    start, end = jst(2027, 2, 15, 0, 0), jst(2027, 2, 15, 10, 0)
    regular = sla.regular_window_on(date(2027, 2, 15))  # 02:00-06:00
    extra = Window(jst(2027, 2, 15, 4, 0), jst(2027, 2, 15, 7, 0), WindowKind.ANNOUNCED)
    assert sla.counted_minutes(start, end, [regular, extra]) == 10 * 60 - 5 * 60


def test_occurrence_lateness_is_measured_from_the_downtime_start():
    """An outage that begins inside a window becomes downtime when the window ends."""
    incident = Incident(
        IncidentKind.OUTAGE,
        jst(2027, 2, 15, 5, 0),
        jst(2027, 2, 15, 9, 0),
        occurrence_announced_at=jst(2027, 2, 15, 6, 50),
        recovery_announced_at=jst(2027, 2, 15, 9, 10),
    )
    assert sla.late_announcements(incident, windows_for(incident)) is None
    assert sla.late_announcements(incident) == (True, False)


# --- other kinds and the cap (R-51) ------------------------------------------------------------


def test_data_lost_pays_f_and_security_failure_f_over_30():
    at = jst(2027, 2, 3, 9, 0)
    lost = Incident(IncidentKind.DATA_LOST, at, at + timedelta(minutes=30), at, at)
    breach = Incident(IncidentKind.SECURITY_FAILURE, at, at + timedelta(minutes=30), at, at)
    assert sla.assess(lost, monthly_fee=FEE, anchor_day=21).amount == FEE
    assert sla.assess(breach, monthly_fee=FEE, anchor_day=21).amount == 1_666


def test_the_month_is_capped_at_f():
    at = jst(2027, 2, 3, 9, 0)
    lost = Incident(IncidentKind.DATA_LOST, at, at + timedelta(hours=2))  # never announced
    result = sla.assess(lost, monthly_fee=FEE, anchor_day=21, already_this_month=2_083)
    assert result.subtotal == FEE + 1_666
    assert result.cap_left == FEE - 2_083
    assert result.amount == FEE - 2_083 and result.capped


def test_an_outage_across_two_billing_months_belongs_to_the_first():
    """R-51 reading: the billing month it started in, with that month's F."""
    incident = Incident(IncidentKind.OUTAGE, jst(2027, 2, 19, 12, 0), jst(2027, 2, 22, 12, 0))
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21)
    assert result.billing_month == billing_month_named(2027, 2)


def test_the_fee_in_force_follows_an_upgrade_from_its_billing_month():
    """R-51 reading with R-21: the new fee applies from the billing month after the change."""
    changes = [(date(2027, 1, 21), 100_000)]
    assert sla.monthly_fee_in(billing_month_named(2027, 1), 50_000, changes) == 50_000
    assert sla.monthly_fee_in(billing_month_named(2027, 2), 50_000, changes) == 100_000


def test_the_claim_deadline_of_a_month_end_is_the_last_day_three_months_on():
    assert sla.claim_deadline(jst(2026, 11, 30, 12, 0)) == date(2027, 2, 28)
    # Tokyo date: 2027-01-31 23:30 UTC is 2027-02-01 in Tokyo.
    utc_instant = datetime.fromisoformat("2027-01-31T23:30:00+00:00")
    assert sla.claim_deadline(utc_instant) == date(2027, 5, 1)


def test_an_open_incident_cannot_be_assessed_or_claimed():
    incident = Incident(IncidentKind.OUTAGE, W4_START, None)
    with pytest.raises(ValueError):
        sla.assess(incident, monthly_fee=FEE, anchor_day=21)
    assert sla.claim_refusal(incident, date(2027, 3, 1)) == ClaimRefusal.OPEN


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        Incident(IncidentKind.OUTAGE, datetime(2027, 2, 3, 9), None)


# --- properties --------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(TOKYO)
)
durations = st.integers(min_value=0, max_value=60 * 24 * 20)
fees = st.integers(min_value=0, max_value=10_000_000)
kinds = st.sampled_from(list(IncidentKind))
delays = st.one_of(st.none(), st.integers(min_value=0, max_value=600))


def _incident(kind, start, minutes, occurrence, recovery) -> Incident:
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    return Incident(
        kind,
        start,
        end,
        None if occurrence is None else start + timedelta(minutes=occurrence),
        None if recovery is None else end + timedelta(minutes=recovery),
    )


@settings(max_examples=200)
@given(
    fees,
    st.lists(st.tuples(kinds, st.integers(0, 20 * 24), durations, delays, delays), max_size=6),
)
def test_property_never_above_f_per_billing_month(fee, items):
    """R-51: however many incidents a billing month has, their claims total at most F."""
    base = jst(2027, 2, 1, 0, 0)
    claimed = 0
    for kind, offset_hours, minutes, occurrence, recovery in items:
        incident = _incident(
            kind, base + timedelta(hours=offset_hours), minutes, occurrence, recovery
        )
        result = sla.assess(
            incident,
            monthly_fee=fee,
            anchor_day=21,
            windows=windows_for(incident),
            already_this_month=claimed,
        )
        assert 0 <= result.amount <= result.subtotal
        claimed += result.amount
        assert claimed <= fee


@settings(max_examples=200)
@given(fees, starts, durations, st.integers(min_value=0, max_value=60 * 24 * 5))
def test_property_outage_compensation_is_monotone_in_minutes(fee, start, minutes, more):
    """R-51: a longer outage never earns less."""
    short = _incident(IncidentKind.OUTAGE, start, minutes, 0, 0)
    longer = _incident(IncidentKind.OUTAGE, start, minutes + more, 0, 0)
    a = sla.assess(short, monthly_fee=fee, anchor_day=21, windows=windows_for(short))
    b = sla.assess(longer, monthly_fee=fee, anchor_day=21, windows=windows_for(longer))
    assert b.counted_minutes >= a.counted_minutes
    assert b.amount >= a.amount


@settings(max_examples=200)
@given(fees, starts, st.integers(min_value=0, max_value=24 * 60))
def test_property_no_outage_compensation_at_24_hours_or_less(fee, start, minutes):
    """R-51: only a continuous outage over 24 hours is compensated (announced in time)."""
    incident = _incident(IncidentKind.OUTAGE, start, minutes, 0, 0)
    result = sla.assess(incident, monthly_fee=fee, anchor_day=21, windows=windows_for(incident))
    assert result.amount == 0


@settings(max_examples=200)
@given(
    fees,
    st.integers(min_value=2026, max_value=2030),
    st.integers(min_value=1, max_value=12),
    st.sampled_from(sla.REGULAR_WINDOW_MONDAYS),
    st.integers(min_value=0, max_value=239),
    st.integers(min_value=0, max_value=239),
    delays,
    delays,
)
def test_property_an_outage_inside_a_window_counts_nothing(
    fee, year, month, n, a, b, occurrence, recovery
):
    """R-50: an outage wholly inside a regular window is maintenance: nothing is owed, not
    even for its announcements."""
    window = sla.regular_window_on(sla.nth_monday(year, month, n))
    start = window.start + timedelta(minutes=min(a, b))
    incident = _incident(IncidentKind.OUTAGE, start, abs(a - b), occurrence, recovery)
    assert incident.ended_at <= window.end
    result = sla.assess(incident, monthly_fee=fee, anchor_day=21, windows=windows_for(incident))
    assert result.counted_minutes == 0
    assert result.amount == 0 and result.lines == ()


@settings(max_examples=200)
@given(starts)
def test_property_the_claim_window_is_about_three_months(ended):
    deadline = sla.claim_deadline(ended)
    end_day = ended.astimezone(TOKYO).date()
    assert 89 <= (deadline - end_day).days <= 92


# --- which contracts an incident touched (R-52) --------------------------------------------


def _contract(**overrides) -> sla.ContractFacts:
    facts = {
        "organisation_id": 1,
        "service_id": 10,
        "anchor_day": 21,
        "service_start": date(2026, 11, 5),
        "ended_on": None,
        "plans": ((date(2026, 11, 5), 100),),
        "initial_fee": FEE,
        "fee_changes": (),
    }
    return sla.ContractFacts(**{**facts, **overrides})


def test_an_incident_touches_the_contracts_of_its_services_plans_and_organisations():
    everyone = sla.Scope(frozenset({10}))
    assert sla.touches(everyone, W4_START, W4_END, _contract())
    assert not sla.touches(everyone, W4_START, W4_END, _contract(service_id=11))
    only_org_2 = sla.Scope(frozenset({10}), organisation_ids=frozenset({2}))
    assert not sla.touches(only_org_2, W4_START, W4_END, _contract())
    only_plan_200 = sla.Scope(frozenset({10}), plan_ids=frozenset({200}))
    assert not sla.touches(only_plan_200, W4_START, W4_END, _contract())
    upgraded = _contract(plans=((date(2026, 11, 5), 100), (date(2027, 1, 15), 200)))
    assert sla.touches(only_plan_200, W4_START, W4_END, upgraded)


def test_an_incident_touches_only_contracts_running_during_it():
    everyone = sla.Scope(frozenset({10}))
    assert not sla.touches(everyone, W4_START, W4_END, _contract(ended_on=date(2027, 2, 2)))
    assert sla.touches(everyone, W4_START, W4_END, _contract(ended_on=date(2027, 2, 3)))
    assert not sla.touches(everyone, W4_START, W4_END, _contract(service_start=date(2027, 2, 5)))
    assert sla.touches(everyone, W4_START, None, _contract(service_start=date(2027, 2, 5)))


def test_maintenance_downtime_owes_no_announcement():
    """R-50: unannounced or overrunning maintenance counts as downtime, nothing more."""
    incident = Incident(IncidentKind.OUTAGE, W4_START, W4_END, None, None, maintenance=True)
    result = sla.assess(incident, monthly_fee=FEE, anchor_day=21)
    assert [line.kind for line in result.lines] == [CompensationKind.OUTAGE]
    assert result.amount == 2_083
