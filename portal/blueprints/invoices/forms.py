from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField


class InvoiceAccessForm(FlaskForm):
    """The administrators decide whether members see the organisation's invoices."""

    members_see_invoices = BooleanField(_l("Members may see invoices"))


class PayForm(FlaskForm):
    """Starting a card payment needs nothing but the CSRF token."""
