from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

LANGUAGE_CHOICES = [SelectChoice("ja", "日本語"), SelectChoice("en", "English")]

_required = DataRequired(_l("This field is required."))
_email = Email(_l("Enter a valid e-mail address."))


class OnboardForm(FlaskForm):
    """The customer's application (利用申込書), entered by staff."""

    legal_name = StringField(_l("Legal name"), validators=[_required, Length(max=200)])
    legal_name_kana = StringField(_l("Legal name (kana)"), validators=[Length(max=200)])
    postal_code = StringField(_l("Postal code"), validators=[Length(max=10)])
    address = StringField(_l("Address"), validators=[Length(max=300)])
    phone = StringField(_l("Phone"), validators=[Length(max=40)])
    billing_email = EmailField(
        _l("Billing e-mail"), validators=[_required, _email, Length(max=254)]
    )
    contract_contact_name = StringField(_l("Contract contact"), validators=[Length(max=100)])
    contract_contact_email = EmailField(
        _l("Contract contact e-mail"), validators=[Optional(), _email, Length(max=254)]
    )
    operations_contact_name = StringField(_l("Operations contact"), validators=[Length(max=100)])
    operations_contact_email = EmailField(
        _l("Operations contact e-mail"), validators=[Optional(), _email, Length(max=254)]
    )
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    admin_name = StringField(_l("First administrator"), validators=[_required, Length(max=100)])
    admin_email = EmailField(
        _l("Administrator e-mail"), validators=[_required, _email, Length(max=254)]
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


class ViewAsForm(FlaskForm):
    as_user_id = SelectField(_l("View as"), coerce=int)
    reason = TextAreaField(
        _l("Reason (recorded and shown to the customer)"),
        validators=[
            DataRequired(_l("Give the reason.")),
            Length(min=10, max=1000, message=_l("Give the reason in 10 to 1,000 characters.")),
        ],
    )
