from flask_wtf import FlaskForm
from wtforms import HiddenField


class ConfirmRequestForm(FlaskForm):
    """The choice the quote was made for, and its total, sent back to confirm (R-32)."""

    kind = HiddenField()
    plan = HiddenField()
    on = HiddenField()
    total = HiddenField()


class WithdrawForm(FlaskForm):
    """Withdrawing a pending request needs nothing but the CSRF token (R-23)."""
