from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo

from portal.blueprints.validators import at_most, email


def _email_field() -> EmailField:
    return EmailField(
        _l("E-mail address"),
        validators=[DataRequired(_l("Enter your e-mail address.")), email(), at_most(254)],
    )


class LoginForm(FlaskForm):
    email = _email_field()
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), at_most(200)]
    )
    next = HiddenField()


class LogoutForm(FlaskForm):
    pass


class PasswordResetRequestForm(FlaskForm):
    email = _email_field()


class NewPasswordForm(FlaskForm):
    """A password chosen from an e-mailed link (reset or invitation, R-63)."""

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
