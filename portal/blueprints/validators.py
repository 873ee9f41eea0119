"""Validators with messages in the customer's language (WTForms' own read awkwardly in ja)."""

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from portal.services.errors import PortalError

LANGUAGE_CHOICES = [SelectChoice("ja", "日本語"), SelectChoice("en", "English")]


def required(message: str | None = None) -> DataRequired:
    return DataRequired(message or _l("This field is required."))


def email() -> Email:
    return Email(_l("Enter a valid e-mail address."))


def at_most(n: int) -> Length:
    return Length(max=n, message=_l("Use at most %(max)d characters."))


def show_error(form: Any, error: PortalError, default: str | None = None) -> None:
    """Put a refused use case's message next to the field it names (or `default`), else at
    the top of the form; the form keeps what the user typed."""
    field = getattr(form, error.field or default or "", None)
    (field.errors if field is not None else form.form_errors).append(str(error))
