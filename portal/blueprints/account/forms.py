from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo

from portal.blueprints.validators import at_most


class PasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))]
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Enter a new password.")), at_most(200)],
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(_l("Enter the new password again.")),
            EqualTo("new_password", _l("The two new passwords differ.")),
        ],
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
    """Revoking needs nothing but the CSRF token."""
