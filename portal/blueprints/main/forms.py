from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField

from portal.blueprints.validators import LANGUAGE_CHOICES


class LanguageForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    next = HiddenField()


class LeaveForm(FlaskForm):
    """The stop button on the banner shown while inside a customer's portal."""
