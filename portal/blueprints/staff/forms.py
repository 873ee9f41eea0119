from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.blueprints.validators import LANGUAGE_CHOICES, at_most, email, required
from portal.services.entries import MAX_REASON_LENGTH, MIN_REASON_LENGTH
from portal.services.information import FIELD_LABELS

_required = required()
_email = email()


class OnboardForm(FlaskForm):
    """The customer's application (利用申込書), entered by staff. The organisation's fields
    carry the names the customer's own page gives them (one word per thing)."""

    legal_name = StringField(FIELD_LABELS["legal_name"], validators=[_required, at_most(200)])
    legal_name_kana = StringField(FIELD_LABELS["legal_name_kana"], validators=[at_most(200)])
    postal_code = StringField(FIELD_LABELS["postal_code"], validators=[at_most(10)])
    address = StringField(FIELD_LABELS["address"], validators=[at_most(300)])
    phone = StringField(FIELD_LABELS["phone"], validators=[at_most(40)])
    billing_email = EmailField(
        FIELD_LABELS["billing_email"], validators=[_required, _email, at_most(254)]
    )
    contract_contact_name = StringField(
        FIELD_LABELS["contract_contact_name"], validators=[at_most(100)]
    )
    contract_contact_email = EmailField(
        FIELD_LABELS["contract_contact_email"], validators=[Optional(), _email, at_most(254)]
    )
    operations_contact_name = StringField(
        FIELD_LABELS["operations_contact_name"], validators=[at_most(100)]
    )
    operations_contact_email = EmailField(
        FIELD_LABELS["operations_contact_email"], validators=[Optional(), _email, at_most(254)]
    )
    locale = SelectField(FIELD_LABELS["locale"], choices=LANGUAGE_CHOICES)
    admin_name = StringField(_l("Administrator name"), validators=[_required, at_most(100)])
    admin_email = EmailField(
        _l("Administrator e-mail"), validators=[_required, _email, at_most(254)]
    )
    plan_id = SelectField(_l("Plan"), coerce=int, validators=[_required])
    service_start = DateField(
        _l("Service start (date on the start notice)"),
        validators=[DataRequired(_l("Enter the service start date."))],
    )
    anchor_day = IntegerField(
        _l("Anchor day"),
        default=21,
        validators=[
            DataRequired(_l("Enter the anchor day.")),
            NumberRange(1, 28, _l("The anchor day must be 1 to 28.")),
        ],
    )
    partner_id = SelectField(_l("Sold via"), coerce=int, default=0)
    # Onboarding creates a contract and e-mails an invitation: the confirmation page sends
    # the form again with "yes" (onboard) or "edit" (show the form again, as typed).
    confirmed = HiddenField()


class ViewAsForm(FlaskForm):
    as_user_id = SelectField(_l("View as"), coerce=int)
    reason = TextAreaField(
        _l("Reason (recorded and shown to the customer)"),
        validators=[
            DataRequired(_l("Give the reason.")),
            Length(
                min=MIN_REASON_LENGTH,
                max=MAX_REASON_LENGTH,
                message=_l(
                    "Give the reason in %(min)d to %(max)d characters.",
                    min=MIN_REASON_LENGTH,
                    max=MAX_REASON_LENGTH,
                ),
            ),
        ],
    )


class UsageForm(FlaskForm):
    """R-15: staff enter a measurement when the service cannot report it itself."""

    used_gb = StringField(_l("Used (GB)"), validators=[required(), at_most(20)])
    measured_at = DateTimeLocalField(
        _l("Measured at (Tokyo)"), format="%Y-%m-%dT%H:%M", validators=[required()]
    )


class RetryMailForm(FlaskForm):
    """Retry one given-up e-mail (its id), or every one (no id)."""

    email_id = IntegerField(validators=[Optional(), NumberRange(min=1)])
