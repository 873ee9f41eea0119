"""The one clock of the portal. R-01: business dates are Tokyo dates.

Code asks `clock.now()` for an instant and `clock.today()` for the business date; tests
and demos fix the clock with `clock.set()` instead of patching datetime.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_date(instant: datetime) -> date:
    """R-01: the Tokyo date of an instant."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(TOKYO).date()


class Clock:
    def __init__(self) -> None:
        self._fixed: datetime | None = None

    def set(self, instant: datetime | None) -> None:
        """Fix the clock at an aware instant (None lets it run again)."""
        if instant is not None and instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        self._fixed = instant

    @property
    def is_fixed(self) -> bool:
        return self._fixed is not None

    def now(self) -> datetime:
        return self._fixed if self._fixed is not None else datetime.now(UTC)

    def today(self) -> date:
        """R-01: today is the Tokyo date, never the server's UTC date."""
        return tokyo_date(self.now())


clock = Clock()
