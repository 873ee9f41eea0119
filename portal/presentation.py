"""What templates share: filters for yen and Tokyo dates, and the actor's permissions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, g
from flask_babel import format_date, format_datetime, get_locale

from portal import permissions
from portal.clock import clock


def yen(amount: int | None) -> str:
    """R-13: whole yen, never a fraction."""
    if amount is None:
        return ""
    return f"¥{amount:,}"


def long_date(day: date | None) -> str:
    return "" if day is None else format_date(day, format="long")


def tokyo_datetime(instant: datetime | None) -> str:
    """Instants are stored in UTC and shown in Tokyo time (R-01)."""
    return "" if instant is None else format_datetime(instant, format="medium")


def register(app: Flask) -> None:
    app.jinja_env.filters["yen"] = yen
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["tokyo"] = tokyo_datetime
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
