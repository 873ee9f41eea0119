"""Forms of the I-NET SERVICE registration pages: the customer's, the public application's and
the back office's (R-80, R-84). Every value from outside is bounded; control characters (a NUL
byte among them) are refused next to the field."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import EqualTo, Optional, ValidationError

from portal.blueprints.validators import LANGUAGE_CHOICES, at_most, email, required
from portal.services.information import FIELD_LABELS

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def no_control_characters():
    def check(form, field) -> None:
        if isinstance(field.data, str) and _CONTROL.search(field.data):
            raise ValidationError(_l("Remove the control characters from this field."))

    return check


def _name(label, n: int = 100) -> StringField:
    return StringField(label, validators=[no_control_characters(), required(), at_most(n)])


def _email(label) -> EmailField:
    return EmailField(
        label, validators=[no_control_characters(), required(), email(), at_most(254)]
    )


class ContactsForm(FlaskForm):
    """IN 16: the application contact and the operations manager."""

    application_contact_name = _name(_l("Application contact"))
    application_contact_email = _email(_l("Application contact e-mail"))
    operations_manager_name = _name(_l("Operations manager"))
    operations_manager_email = _email(_l("Operations manager e-mail"))


class ApplyForm(ContactsForm):
    """An administrator applies and consents for the organisation; an agent applies for its
    client without consenting (R-71): the view asks for the consent only of administrators."""

    consent = BooleanField(_l("I have read the I-NET SERVICE terms and consent to them"))
    terms_version_id = HiddenField()


class ConfirmForm(FlaskForm):
    """The confirmation step of an action that cannot be undone or that e-mails."""

    confirmed = HiddenField()


class StaffRegisterForm(ContactsForm):
    confirmed = HiddenField()


class PublicApplicationForm(FlaskForm):
    """The public application (R-80): the company, its contacts, its first administrator,
    and the consent to the terms in force."""

    legal_name = _name(FIELD_LABELS["legal_name"], 200)
    legal_name_kana = StringField(
        FIELD_LABELS["legal_name_kana"],
        validators=[no_control_characters(), required(), at_most(200)],
    )
    postal_code = StringField(
        FIELD_LABELS["postal_code"], validators=[no_control_characters(), required(), at_most(10)]
    )
    address = StringField(
        FIELD_LABELS["address"], validators=[no_control_characters(), required(), at_most(300)]
    )
    phone = StringField(
        FIELD_LABELS["phone"], validators=[no_control_characters(), required(), at_most(40)]
    )
    application_contact_name = _name(_l("Application contact"))
    application_contact_email = _email(_l("Application contact e-mail"))
    operations_manager_name = _name(_l("Operations manager"))
    operations_manager_email = _email(_l("Operations manager e-mail"))
    admin_name = _name(_l("Your name (the first administrator)"))
    admin_email = _email(_l("Your e-mail address (your login ID)"))
    locale = SelectField(FIELD_LABELS["locale"], choices=LANGUAGE_CHOICES, default="ja")
    consent = BooleanField(
        _l("I have read the I-NET SERVICE terms and consent to them"),
        validators=[required(_l("Consent to the I-NET SERVICE terms to apply."))],
    )
    terms_version_id = HiddenField(validators=[Optional(), at_most(12)])


class VerifyForm(FlaskForm):
    """The first administrator's password, chosen on the e-mailed link's page."""

    new_password = PasswordField(
        _l("Password"), validators=[required(_l("Choose a password.")), at_most(200)]
    )
    confirm = PasswordField(
        _l("Password again"),
        validators=[
            required(_l("Enter the password again.")),
            EqualTo("new_password", _l("The two passwords differ.")),
        ],
    )
