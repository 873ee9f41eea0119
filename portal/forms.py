"""Bounds that every form field of the portal gets, whatever its form says (issue 13).

One hook (installed on FlaskForm's Meta, as the field rendering in web.py is) adds, before a
field's own validators:

- text: no control characters (a NUL is refused by PostgreSQL and breaks every export; tabs
  and line breaks are allowed only where a text area asks for several lines), and a length
  that fits what the database keeps when the form sets none;
- dates and date-times: a year the portal can mean (2000..2100), so that year 0001 or 9999
  never reaches a rule or the database; the rules narrow it further per field;
- numbers: finite and within the database's integer range unless the form says less.

Each refusal is a message next to the field, and the form's other fields are still checked.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, Form
from wtforms.fields import (
    DateField,
    DateTimeField,
    DateTimeLocalField,
    DecimalField,
    FloatField,
    HiddenField,
    IntegerField,
    StringField,
    TextAreaField,
)
from wtforms.meta import DefaultMeta
from wtforms.validators import Length, StopValidation

FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_INTEGER = 2**31 - 1  # PostgreSQL's integer; ids and counts are never larger
# When a form sets no length: a line of text, or a text area of several paragraphs.
DEFAULT_MAX_LINE, DEFAULT_MAX_TEXT = 500, 5000
_LINE_BREAKS = frozenset("\t\n\r")


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """NUL and the other C0/C1 control characters (and unpaired surrogates); a text area may
    keep tabs and line breaks."""
    return any(
        unicodedata.category(ch) in ("Cc", "Cs") and not (multiline and ch in _LINE_BREAKS)
        for ch in text
    )


def _no_control_characters(form: Form, field: Field) -> None:
    if isinstance(field, HiddenField):
        # Nobody typed it and nobody would see a message next to it: a hidden value with a
        # control character (a forged `next`, a mangled fingerprint) counts as not sent.
        if isinstance(field.data, str) and has_control_characters(field.data):
            field.data = ""
        return
    multiline = isinstance(field, TextAreaField)
    for value in field.raw_data or ():
        if isinstance(value, str) and has_control_characters(value, multiline=multiline):
            raise StopValidation(_l("Remove the control characters from this field."))


def _sensible_year(form: Form, field: Field) -> None:
    value = field.data
    if isinstance(value, date | datetime) and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise StopValidation(_l("Enter a date between 2000 and 2100."))


def _finite_integer_range(form: Form, field: Field) -> None:
    value = field.data
    if value is None:
        return
    if (isinstance(value, Decimal) and not value.is_finite()) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise StopValidation(_l("Enter a number."))
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise StopValidation(_l("Enter a smaller number."))


def _has(field: Field, kind: type) -> bool:
    return any(isinstance(v, kind) for v in field.validators)


def bounds_for(field: Field) -> list[Any]:
    """The validators that go before the field's own."""
    if isinstance(field, StringField):
        bounds: list[Any] = [_no_control_characters]
        if not _has(field, Length):
            most = DEFAULT_MAX_TEXT if isinstance(field, TextAreaField) else DEFAULT_MAX_LINE
            bounds.append(Length(max=most, message=_l("Use at most %(max)d characters.")))
        return bounds
    if isinstance(field, DateField | DateTimeField | DateTimeLocalField):
        return [_sensible_year]
    if isinstance(field, IntegerField | DecimalField | FloatField):
        return [_finite_integer_range]
    return []


def _bind_field(meta: DefaultMeta, form: Form, unbound_field: Any, options: dict) -> Field:
    field = DefaultMeta.bind_field(meta, form, unbound_field, options)
    bounds = bounds_for(field)
    if bounds:
        # A new list per bound field: the class's validators are shared by every instance.
        field.validators = [*bounds, *field.validators]
    return field


def install() -> None:
    """Every form of the portal is a FlaskForm: its Meta binds every field through here."""
    FlaskForm.Meta.bind_field = _bind_field  # type: ignore[method-assign]
