from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional

from portal.blueprints.auth.forms import NewPasswordForm
from portal.blueprints.validators import at_most


class PasswordForm(NewPasswordForm):
    """The signed-in user's own change: the current password, then the new one twice."""

    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))]
    )


class ApiTokenForm(FlaskForm):
    name = StringField(
        _l("Token name"),
        validators=[
            DataRequired(_l("Name the token, e.g. the system that uses it.")),
            at_most(100),
        ],
    )


class RevokeTokenForm(FlaskForm):
    """Revoking needs nothing but the CSRF token, and `confirmed` "yes" from the confirmation
    page (a revoked token never works again)."""

    confirmed = HiddenField()


class MisuseForm(FlaskForm):
    """R-63: what the user noticed (optional); sending it signs the account out everywhere."""

    details = TextAreaField(
        _l("What did you notice? (optional)"), validators=[Optional(), at_most(2000)]
    )
