"""Reading JSON request bodies: a wrong shape is 400, a choice the rules refuse is 422."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from flask import request
from flask_babel import gettext as _

from portal.blueprints.api.errors import ApiError, bad_request, refused
from portal.domain.quotes import Refusal
from portal.services import requests as request_service
from portal.services.requests import Choice

# JSON types of each body's keys (None is always allowed for an optional key).
QUOTE_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "plan_id": (int,),
    "date": (str,),
    "notice_on": (str,),
}
# the notice date of a confirmed request is the day it reaches us: today, never chosen.
REQUEST_FIELDS = {k: v for k, v in QUOTE_FIELDS.items() if k != "notice_on"}
USAGE_FIELDS: dict[str, tuple[type, ...]] = {"used_gb": (str, int, float), "measured_at": (str,)}
# a claim names the incident; the amount is computed, never sent.
CLAIM_FIELDS: dict[str, tuple[type, ...]] = {"incident_id": (int,)}
# The largest id the database keeps (a 32-bit integer column); a larger one names nothing.
MAX_ID = 2**31 - 1
# Every body of the API is a small object: anything larger is refused unread.
MAX_BODY_BYTES = 16 * 1024
MAX_TEXT = 200
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def json_object(
    fields: dict[str, tuple[type, ...]], *, required: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The body as a JSON object with only `fields`, each of its JSON type; bounded in size and
    depth before it is parsed (issue 13: 100,000-deep JSON was a 500), no control characters
    in its strings."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise bad_request(_("The request body is too large."))
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        raise bad_request(_("Send a JSON object as the request body."))
    for name in body:
        if name not in fields:
            raise bad_request(_("This field is not accepted here."), field=name)
    for name in sorted(required):
        if body.get(name) is None:
            raise bad_request(_("This field is required."), field=name)
    for name, types in fields.items():
        value = body.get(name)
        # JSON true is not the number 1.
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise bad_request(_("This value has the wrong type."), field=name)
        if isinstance(value, str) and (len(value) > MAX_TEXT or CONTROL.search(value)):
            raise bad_request(_("This value cannot be stored."), field=name)
    return body


def record_id(body: dict[str, Any], name: str) -> int | None:
    """The id the body names, or None when it cannot name a stored row (zero, negative, or
    too large for the database, which would fail on it rather than find nothing)."""
    value = body[name]
    return value if 0 < value <= MAX_ID else None


def choice(body: dict[str, Any]) -> Choice:
    """The kind, plan and date chosen (R-20..R-31); `date` is the effective date or month end."""
    result = request_service.parse_choice(body.get("kind"), body.get("plan_id"), body.get("date"))
    if isinstance(result, Refusal):
        raise refused(result)
    return result


def optional_day(body: dict[str, Any], name: str) -> date | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise refused(Refusal("bad_date", name)) from None


def instant(body: dict[str, Any], name: str) -> datetime:
    """An ISO 8601 date and time; the service refuses one without its time zone."""
    try:
        return datetime.fromisoformat(body[name])
    except ValueError:
        raise ApiError(
            422,
            "invalid",
            _("Give the time in ISO 8601 with its time zone, e.g. 2027-03-01T09:00:00+09:00."),
            field=name,
        ) from None
