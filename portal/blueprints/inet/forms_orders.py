"""Forms of card orders (the customer's) and of the production back office (R-81, R-82)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from portal.blueprints.billing.forms import TokyoDateField
from portal.blueprints.validators import at_most, required
from portal.domain.inet import MAX_HOLDERS_PER_ORDER, MAX_QUANTITY, CardDesign, OrderAction
from portal.services import card_orders
from portal.services.card_orders import OrderLine

MAX_ID_DIGITS = 9


class OrderForm(FlaskForm):
    """Design, delivery address and note; the holders and their quantities are read by
    `order_lines` (one checkbox and one quantity per holder)."""

    design = RadioField(
        _l("Card design"),
        choices=[SelectChoice(d.value, card_orders.DESIGN_NAMES[d]) for d in CardDesign],
        validators=[required(_l("Choose a card design."))],
    )
    delivery_name = StringField(
        _l("Deliver to (name or department)"),
        validators=[required(), at_most(card_orders.MAX_DELIVERY_NAME)],
    )
    delivery_postal_code = StringField(
        _l("Postal code"),
        validators=[required(), at_most(card_orders.MAX_POSTAL_CODE + 2)],
        render_kw={"autocomplete": "postal-code", "inputmode": "numeric"},
    )
    delivery_address = StringField(
        _l("Address"),
        validators=[required(), at_most(card_orders.MAX_ADDRESS)],
        render_kw={"autocomplete": "street-address"},
    )
    delivery_phone = StringField(
        _l("Phone"),
        validators=[required(), at_most(card_orders.MAX_PHONE)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    note = TextAreaField(
        _l("Note for the provider (optional)"),
        validators=[Optional(), at_most(card_orders.MAX_NOTE)],
        render_kw={"rows": 3},
    )

    def details(self, lines: list[OrderLine]) -> card_orders.OrderDetails:
        return card_orders.OrderDetails(
            lines=tuple(lines),
            design=CardDesign(self.design.data),
            delivery=card_orders.Delivery(
                name=self.delivery_name.data or "",
                postal_code=self.delivery_postal_code.data or "",
                address=self.delivery_address.data or "",
                phone=self.delivery_phone.data or "",
            ),
            note=self.note.data or "",
        )


def _whole_number(value: str) -> int | None:
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_ID_DIGITS:
        return None
    return int(value)


def order_lines(formdata: Mapping[str, Any]) -> tuple[list[OrderLine], str | None]:
    """The holders ticked (`holder`) and each one's quantity (`quantity_<id>`), or why not.

    Bounded before anything is parsed: no more holders than an order takes."""
    raw = formdata.getlist("holder")  # type: ignore[attr-defined]
    if len(raw) > MAX_HOLDERS_PER_ORDER:
        return [], str(
            _l("One order takes at most %(max)d card holders.", max=MAX_HOLDERS_PER_ORDER)
        )
    lines = []
    for value in raw:
        holder_id = _whole_number(value)
        if holder_id is None:
            return [], str(_l("Choose card holders from the list."))
        quantity = _whole_number(formdata.get(f"quantity_{holder_id}", "1") or "1")
        if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
            return [], str(
                _l("Order between 1 and %(max)d cards for each holder.", max=MAX_QUANTITY)
            )
        lines.append(OrderLine(holder_id, quantity))
    if not lines:
        return [], str(_l("Choose at least one card holder."))
    return lines, None


class ConfirmForm(FlaskForm):
    """The second step of withdrawing, cancelling or sending: "yes" does it, "edit" goes
    back."""

    confirmed = HiddenField()


PRODUCTION_ACTIONS = (
    OrderAction.CONFIRM,
    OrderAction.ACCEPT,
    OrderAction.START_PRODUCTION,
    OrderAction.SHIP,
    OrderAction.DELIVER,
)


class StepForm(FlaskForm):
    """One step of production; shipping takes the carrier and the tracking number."""

    action = SelectField(
        _l("Step"),
        choices=[SelectChoice(a.value, card_orders.ACTION_NAMES[a]) for a in PRODUCTION_ACTIONS],
        validators=[required()],
    )
    carrier = StringField(_l("Carrier"), validators=[Optional(), at_most(card_orders.MAX_CARRIER)])
    tracking_number = StringField(
        _l("Tracking number"), validators=[Optional(), at_most(card_orders.MAX_TRACKING_NUMBER)]
    )
    confirmed = HiddenField()


class QueueForm(FlaskForm):
    """The production queue's filters (a GET form: nothing to protect with a token)."""

    class Meta:
        csrf = False

    state = SelectField(_l("State"), validators=[Optional()])
    organisation = StringField(_l("Organisation"), validators=[Optional(), at_most(100)])
    submitted_from = TokyoDateField(_l("Sent from"), validators=[Optional()])
    submitted_to = TokyoDateField(_l("Sent until"), validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.submitted_from, self.submitted_to):
            if field.data is not None and not 2000 <= field.data.year <= 2100:
                field.errors = [*field.errors, str(_l("Enter a date between 2000 and 2100."))]
                valid = False
        start, end = self.submitted_from.data, self.submitted_to.data
        if valid and start and end and end < start:
            self.submitted_to.errors = [str(_l("Choose a day on or after the first day."))]
            valid = False
        text = self.organisation.data or ""
        if "\x00" in text:
            self.organisation.errors = [
                str(_l("This text contains a character that cannot be kept."))
            ]
            valid = False
        return valid
