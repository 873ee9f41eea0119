from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired

from portal.blueprints.validators import at_most, required

_required = required()


class PublishTermsForm(FlaskForm):
    """R-60: a new version of a service's terms, in Japanese and English."""

    service_id = SelectField(_l("Service"), coerce=int, validators=[_required])
    title_ja = StringField(_l("Title (Japanese)"), validators=[_required, at_most(200)])
    title_en = StringField(_l("Title (English)"), validators=[_required, at_most(200)])
    body_ja = TextAreaField(_l("Full text (Japanese)"), validators=[_required, at_most(200_000)])
    body_en = TextAreaField(_l("Full text (English)"), validators=[_required, at_most(200_000)])
    effective_on = DateField(
        _l("Effective date"), validators=[DataRequired(_l("Enter the effective date."))]
    )
    # A published text never changes: the confirmation page sends the form again with "yes"
    # (publish) or "edit" (show the form again, as typed).
    confirmed = HiddenField()


class ConsentForm(FlaskForm):
    agree = BooleanField(
        _l("I have read and agree to these terms"),
        validators=[DataRequired(_l("Tick the box to confirm that you have read and agree."))],
    )
