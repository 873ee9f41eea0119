"""R-01: "today" is the Tokyo date, from the one clock that tests can set."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from portal.clock import Clock, tokyo_date


def test_r01_today_is_the_tokyo_date_not_the_utc_date():
    clock = Clock()
    clock.set(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))  # 2026-11-21 00:00 in Tokyo
    assert clock.today() == date(2026, 11, 21)
    clock.set(datetime(2026, 11, 20, 14, 59, 59, tzinfo=UTC))  # 23:59:59 in Tokyo
    assert clock.today() == date(2026, 11, 20)


def test_r01_any_time_zone_of_the_instant_gives_the_same_tokyo_date():
    new_york = timezone(timedelta(hours=-5))
    assert tokyo_date(datetime(2027, 2, 28, 10, 30, tzinfo=new_york)) == date(2027, 3, 1)


def test_r01_naive_instants_are_refused():
    with pytest.raises(ValueError):
        tokyo_date(datetime(2027, 3, 1, 12, 0))
    with pytest.raises(ValueError):
        Clock().set(datetime(2027, 3, 1, 12, 0))


def test_a_clock_let_go_runs_again():
    clock = Clock()
    fixed = datetime(2001, 1, 1, tzinfo=UTC)
    clock.set(fixed)
    assert clock.now() == fixed
    clock.set(None)
    assert clock.now() > fixed
    assert clock.now().tzinfo is not None
