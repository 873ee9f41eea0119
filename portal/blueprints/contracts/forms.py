from flask_wtf import FlaskForm
from wtforms import HiddenField


class ConfirmRequestForm(FlaskForm):
    """The choice the quote was made for, and the quote's fingerprint, sent back to confirm
    (R-32). Never the total: an agency must not find an amount even in a hidden field (R-71)."""

    kind = HiddenField()
    plan = HiddenField()
    on = HiddenField()
    quote = HiddenField()


class WithdrawForm(FlaskForm):
    """Withdrawing a pending request (R-23) is done only when the confirmation page sends
    confirmed=yes; confirmed=edit goes back to the request."""

    confirmed = HiddenField()
