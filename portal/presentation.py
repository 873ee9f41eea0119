"""What templates share: filters for yen and Tokyo dates, and the actor's permissions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, g
from flask_babel import format_date, get_locale
from flask_babel import gettext as _

from portal import permissions
from portal.clock import TOKYO, clock
from portal.domain.sla import IncidentKind


def yen(amount: int | None) -> str:
    """R-13: whole yen, never a fraction; a credit is written −¥1,000."""
    if amount is None:
        return ""
    return f"−¥{-amount:,}" if amount < 0 else f"¥{amount:,}"


def long_date(day: date | None) -> str:
    return "" if day is None else format_date(day, format="long")


def tokyo_datetime(instant: datetime | None) -> str:
    """Instants are stored in UTC and shown in Tokyo time (R-01), to the minute, as dates are
    written everywhere: 2027年3月1日 10:00, March 1, 2027 10:00."""
    return tokyo_minute(instant)


def tokyo_minute(instant: datetime | None) -> str:
    """An instant to the minute in Tokyo time (R-01), as incidents are recorded (R-50)."""
    if instant is None:
        return ""
    local = instant.astimezone(TOKYO)
    return f"{format_date(local.date(), format='long')} {local:%H:%M}"


def billing_month_name(name: str) -> str:
    """A billing month as people write it: 2027年2月度, billing month 2027-02 (R-02)."""
    year, month = name.split("-")
    if str(get_locale()) == "ja":
        return f"{int(year)}年{int(month)}月度"
    return _("billing month %(name)s", name=name)


def incident_kind_name(kind: str) -> str:
    """What customers call each kind of incident (R-50 reading)."""
    names = {
        IncidentKind.OUTAGE: _("Outage"),
        IncidentKind.DATA_LOST: _("Registered data lost"),
        IncidentKind.SECURITY_FAILURE: _("Security failure"),
    }
    return names[IncidentKind(kind)]


def register(app: Flask) -> None:
    app.jinja_env.filters["yen"] = yen
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["tokyo"] = tokyo_datetime
    app.jinja_env.filters["minute"] = tokyo_minute
    app.jinja_env.filters["incident_kind"] = incident_kind_name
    app.jinja_env.filters["billing_month"] = billing_month_name
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _context() -> dict[str, Any]:
        locale = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        return {
            "actor": g.get("actor"),
            "perm": permissions,
            "locale": locale,
            "languages": app.config["LANGUAGES"],
            "today": clock.today(),
            "now": clock.now(),
            "view_as_minutes": app.config["VIEW_AS_MAX_MINUTES"],
        }
