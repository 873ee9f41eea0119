"""What every PDF document shares: the languages, the formats of dates and yen, the page.

Formats are not translations: a date or an amount is written the same way whatever the
catalog holds, so they live here as plain functions of the document's locale.
"""

from __future__ import annotations

from datetime import date, datetime

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

from portal.clock import TOKYO

LOCALES = ("ja", "en")

PAGE = A4
MARGIN = 18 * mm
WIDTH = PAGE[0] - 2 * MARGIN
GRID = colors.HexColor("#b8b8b8")
SHADE = colors.HexColor("#f0f0f0")
MUTED = colors.HexColor("#555555")

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_day(day: date, locale: str) -> str:
    """A date as "2027年4月20日" in Japanese and "20 April 2027" in English."""
    if locale == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def format_instant(instant: datetime, locale: str) -> str:
    """R-01: an instant in Tokyo time, to the minute."""
    tokyo = instant.astimezone(TOKYO)
    return f"{format_day(tokyo.date(), locale)} {tokyo:%H:%M} JST"


def format_yen(amount: int) -> str:
    """R-13: whole yen, "¥385,000", in both languages."""
    return f"-¥{-amount:,}" if amount < 0 else f"¥{amount:,}"


def format_rate(rate_percent: int) -> str:
    return f"{rate_percent}%"
