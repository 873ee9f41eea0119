"""Validators with messages in the customer's language (WTForms' own read awkwardly in ja)."""

from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

LANGUAGE_CHOICES = [SelectChoice("ja", "日本語"), SelectChoice("en", "English")]


def required(message: str | None = None) -> DataRequired:
    return DataRequired(message or _l("This field is required."))


def email() -> Email:
    return Email(_l("Enter a valid e-mail address."))


def at_most(n: int) -> Length:
    return Length(max=n, message=_l("Use at most %(max)d characters."))
