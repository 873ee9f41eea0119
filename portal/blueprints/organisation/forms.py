from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField, StringField

from portal.blueprints.validators import LANGUAGE_CHOICES
from portal.services.information import FIELD_LABELS


class InformationForm(FlaskForm):
    """The registered information (R-62). The rules live in portal.services.information, so
    the fields here only carry what was typed."""

    legal_name = StringField(FIELD_LABELS["legal_name"])
    legal_name_kana = StringField(FIELD_LABELS["legal_name_kana"])
    postal_code = StringField(FIELD_LABELS["postal_code"])
    address = StringField(FIELD_LABELS["address"])
    phone = StringField(FIELD_LABELS["phone"])
    billing_email = EmailField(FIELD_LABELS["billing_email"])
    contract_contact_name = StringField(FIELD_LABELS["contract_contact_name"])
    contract_contact_email = EmailField(FIELD_LABELS["contract_contact_email"])
    operations_contact_name = StringField(FIELD_LABELS["operations_contact_name"])
    operations_contact_email = EmailField(FIELD_LABELS["operations_contact_email"])
    locale = SelectField(FIELD_LABELS["locale"], choices=LANGUAGE_CHOICES, validate_choice=False)
    # The values the form was shown with: the change applies only while they still hold.
    based_on = HiddenField()
