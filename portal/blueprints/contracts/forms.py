from flask_wtf import FlaskForm
from wtforms import HiddenField


class ConfirmRequestForm(FlaskForm):
    """The choice the quote was made for, and its total, sent back to confirm (R-32)."""

    kind = HiddenField()
    plan = HiddenField()
    on = HiddenField()
    total = HiddenField()


class WithdrawForm(FlaskForm):
    """Withdrawing a pending request (R-23) is done only when the confirmation page sends
    confirmed=yes; confirmed=edit goes back to the request."""

    confirmed = HiddenField()
