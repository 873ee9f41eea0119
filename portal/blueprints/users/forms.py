from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from portal.blueprints.validators import LANGUAGE_CHOICES, at_most, email, required
from portal.models import CustomerRole

ROLE_CHOICES = [
    SelectChoice(CustomerRole.MEMBER.value, _l("Member")),
    SelectChoice(CustomerRole.ADMINISTRATOR.value, _l("Administrator")),
]


class InviteForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[required(_l("Enter the person's name.")), at_most(100)]
    )
    email = EmailField(
        _l("E-mail address"),
        validators=[required(_l("Enter an e-mail address.")), email(), at_most(254)],
    )
    role = SelectField(
        _l("Role"),
        choices=ROLE_CHOICES,
        default=CustomerRole.MEMBER.value,
        validate_choice=True,
    )
    locale = SelectField(_l("Language of e-mails"), choices=LANGUAGE_CHOICES, default="ja")


class UserActionForm(FlaskForm):
    """Re-sending an invitation needs nothing but the CSRF token."""


class RemoveUserForm(FlaskForm):
    """Removing a user cannot be undone: the confirmation page sends `confirmed` "yes"."""

    confirmed = HiddenField()
