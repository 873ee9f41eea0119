"""What templates share: filters for yen and Tokyo dates, and the actor's permissions."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from babel.dates import format_date as babel_format_date
from flask import Flask, g
from flask_babel import get_locale, get_translations
from flask_babel import gettext as _
from jinja2.ext import _make_new_gettext, _make_new_ngettext

from portal import permissions
from portal.clock import TOKYO, clock
from portal.domain.sla import IncidentKind


def yen(amount: int | None) -> str:
    """R-13: whole yen, never a fraction; a credit is written −¥1,000."""
    if amount is None:
        return ""
    return f"−¥{-amount:,}" if amount < 0 else f"¥{amount:,}"


@functools.lru_cache(maxsize=8192)
def _long_date(locale: str, day: date) -> str:
    """Babel's long date, computed once per language and day (issue 15: a list page formats
    the same few dates many times)."""
    return babel_format_date(day, format="long", locale=locale)


def long_date(day: date | None) -> str:
    """2027年3月1日, March 1, 2027: in the language of the page (or of the document being
    rendered under force_locale)."""
    return "" if day is None else _long_date(str(get_locale()), day)


def tokyo_datetime(instant: datetime | None) -> str:
    """Instants are stored in UTC and shown in Tokyo time (R-01), to the minute, as dates are
    written everywhere: 2027年3月1日 10:00, March 1, 2027 10:00."""
    return tokyo_minute(instant)


def tokyo_minute(instant: datetime | None) -> str:
    """An instant to the minute in Tokyo time (R-01), as incidents are recorded (R-50)."""
    if instant is None:
        return ""
    local = instant.astimezone(TOKYO)
    return f"{long_date(local.date())} {local:%H:%M}"


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


def in_section(endpoint: str, within: tuple[str, ...]) -> bool:
    """Whether a page (its endpoint) belongs to a navigation section: `within` holds endpoint
    names and prefixes ("billing."); "staff.partner" takes "staff.partner" but not
    "staff.partner_applications", another section's."""
    return any(
        endpoint.startswith(prefix) and not endpoint[len(prefix) :].startswith("_")
        for prefix in within
    )


def partner_kind_name(kind: str | None) -> str:
    """What a partner company is, as the terms name the two kinds (R-71)."""
    return _("Sales agent") if kind == "sales_agent" else _("Agency")


def register(app: Flask) -> None:
    app.jinja_env.globals["in_section"] = in_section
    app.jinja_env.filters["yen"] = yen
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["tokyo"] = tokyo_datetime
    app.jinja_env.filters["minute"] = tokyo_minute
    app.jinja_env.filters["incident_kind"] = incident_kind_name
    app.jinja_env.filters["partner_kind"] = partner_kind_name
    app.jinja_env.filters["billing_month"] = billing_month_name
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _context() -> dict[str, Any]:
        locale = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        # The template's gettext bound to this render's translations, once (issue 15):
        # Flask-Babel's own looks the translations up again on every call. Same semantics
        # (Jinja's new-style gettext); imported macros keep Flask-Babel's.
        translations = get_translations()
        return {
            "gettext": _make_new_gettext(translations.ugettext),
            "ngettext": _make_new_ngettext(translations.ungettext),
            "actor": g.get("actor"),
            "perm": permissions,
            "locale": locale,
            "languages": app.config["LANGUAGES"],
            "today": clock.today(),
            "now": clock.now(),
            "view_as_minutes": app.config["VIEW_AS_MAX_MINUTES"],
        }
