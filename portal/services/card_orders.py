"""Card orders of I-NET SERVICE: the customer's drafts and orders, and production's steps
(R-81, R-82, R-85 and the reading of the order's states).

Every step is asked of `domain.inet.may()` and applied with ONE conditional UPDATE
(`... SET state = target WHERE id = :id AND state = :source`): of a cancellation and an
acceptance that cross, exactly one changes the row; the other finds the row moved on and is
told plainly what happened first (OrderConflict). Each step leaves a CardOrderEvent, an
audit record and, where the customer must hear of it, a notice in the outbox, all in the
caller's transaction.

Notices go to the registration's operations manager (IN 16: the customer's contact for
running the service) and to the organisation's active administrators (who act on orders in
the portal, and alone may cancel one); they are kept for the organisation under Notices
(R-61). The application contact is the contact for the registration itself, not for orders.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import force_locale, lazy_pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.clock import TOKYO, clock
from portal.domain.inet import (
    FINAL_STATES,
    MAX_HOLDERS_PER_ORDER,
    MAX_QUANTITY,
    PROGRESS,
    CancelRefusal,
    CardDesign,
    OrderAction,
    OrderActor,
    OrderState,
    may,
    transition,
    why_not_cancellable,
)
from portal.extensions import db
from portal.models import (
    CardHolder,
    CardOrder,
    CardOrderEvent,
    CardOrderItem,
    InetRegistration,
    Organisation,
)
from portal.permissions import (
    Actor,
    can_place_card_orders,
    is_agent,
    is_customer_admin,
    is_production_staff,
)
from portal.presentation import tokyo_minute
from portal.services import audit, inet_registrations, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

# Bounds of what the order forms send (the columns' lengths).
MAX_DELIVERY_NAME = 100
MAX_POSTAL_CODE = 8  # 123-4567
MAX_ADDRESS = 300
MAX_PHONE = 40
MAX_NOTE = 500
MAX_CARRIER = 60
MAX_TRACKING_NUMBER = 60
PAGE_SIZE = 25

STATE_NAMES: dict[OrderState, Any] = {
    OrderState.DRAFT: _l("Draft"),
    # "Sent" is also a column of dates elsewhere (送信日時): the state has its own context.
    OrderState.SUBMITTED: lazy_pgettext("order state", "Sent"),
    OrderState.CONFIRMED: _l("Confirmed"),
    OrderState.ACCEPTED: _l("Accepted"),
    OrderState.IN_PRODUCTION: _l("In production"),
    OrderState.SHIPPED: _l("Shipped"),
    OrderState.DELIVERED: _l("Delivered"),
    OrderState.WITHDRAWN: _l("Withdrawn"),
    OrderState.CANCELLED: _l("Cancelled"),
}
ACTION_NAMES: dict[OrderAction, Any] = {
    OrderAction.SUBMIT: _l("Order sent"),
    OrderAction.DISCARD: _l("Draft discarded"),
    OrderAction.WITHDRAW: _l("Order withdrawn"),
    OrderAction.CONFIRM: _l("Order confirmed"),
    OrderAction.CANCEL: _l("Order cancelled"),
    OrderAction.ACCEPT: _l("Order accepted"),
    OrderAction.START_PRODUCTION: _l("Production started"),
    OrderAction.SHIP: _l("Shipped"),
    OrderAction.DELIVER: _l("Delivered"),
}
DESIGN_NAMES: dict[CardDesign, Any] = {
    CardDesign.STANDARD: _l("Standard"),
    CardDesign.NAVY: _l("Navy"),
    CardDesign.VISITOR: _l("Large photo"),
}
DESIGN_DESCRIPTIONS: dict[CardDesign, Any] = {
    CardDesign.STANDARD: _l("White card with your company name in blue."),
    CardDesign.NAVY: _l("A navy band with white lettering across the top."),
    CardDesign.VISITOR: _l("A large photo, with the department above the name."),
}
# The instant each state was reached, by the column the step sets.
STAMPS: dict[OrderState, str] = {
    OrderState.DRAFT: "created_at",
    OrderState.SUBMITTED: "submitted_at",
    OrderState.CONFIRMED: "confirmed_at",
    OrderState.ACCEPTED: "accepted_at",
    OrderState.IN_PRODUCTION: "production_started_at",
    OrderState.SHIPPED: "shipped_at",
    OrderState.DELIVERED: "delivered_at",
    OrderState.WITHDRAWN: "withdrawn_at",
    OrderState.CANCELLED: "cancelled_at",
}
# States production works on, oldest first (the rest are history, newest first).
WAITING_STATES = (
    OrderState.SUBMITTED,
    OrderState.CONFIRMED,
    OrderState.ACCEPTED,
    OrderState.IN_PRODUCTION,
    OrderState.SHIPPED,
)
# The steps the customer hears of by e-mail: the template email/card_order_<kind>.txt.
_NOTICES = {
    OrderAction.SUBMIT: "card_order_submitted",
    OrderAction.WITHDRAW: "card_order_withdrawn",
    OrderAction.CONFIRM: "card_order_confirmed",
    OrderAction.CANCEL: "card_order_cancelled",
    OrderAction.ACCEPT: "card_order_accepted",
    OrderAction.SHIP: "card_order_shipped",
}
# the confirmation forms the contract, the acceptance closes the cancel window,
# the cancellation ends it: those notices take effect when they arrive.
_CONTRACT_NOTICES = frozenset({OrderAction.CONFIRM, OrderAction.ACCEPT, OrderAction.CANCEL})

_POSTAL_CODE = re.compile(r"^(\d{3})-?(\d{4})$")
_PHONE = re.compile(r"^\+?[0-9()\- ]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # what a note may not hold
_DASHES = re.compile(r"[‐‑‒–—―−ーｰ－﹣]")


class OrderConflict(Conflict):
    """The order moved on before this step could be taken; the message says what happened."""


def state_name(state: OrderState | str) -> str:
    return str(STATE_NAMES[OrderState(state)])


def design_name(design: CardDesign | str) -> str:
    return str(DESIGN_NAMES[CardDesign(design)])


def action_name(action: OrderAction | str) -> str:
    return str(ACTION_NAMES[OrderAction(action)])


def stamp(order: CardOrder, state: OrderState | None = None) -> datetime | None:
    """When the order reached `state` (default: its current state)."""
    return getattr(order, STAMPS[state or order.state])


# --- who acts ------------------------------------------------------------------------------


def actor_kind(actor: Actor) -> OrderActor | None:
    """The kind of person the order's rules know the actor as, or None (members, staff
    viewing as the customer (R-72), support and billing staff)."""
    if is_production_staff(actor):
        return OrderActor.PRODUCTION
    if actor.is_staff_view:
        return None
    if is_agent(actor) and actor.is_agent_entry:
        return OrderActor.AGENT
    if is_customer_admin(actor) and actor.entry is None:
        return OrderActor.CUSTOMER_ADMIN
    return None


def _check_scope(actor: Actor, order: CardOrder, kind: OrderActor) -> None:
    """Customers act on their own organisation's orders, agents on those they placed (R-85)."""
    if kind == OrderActor.PRODUCTION:
        return
    if actor.organisation_id != order.organisation_id:
        raise NotAllowed(_("This order is not one of your organisation's."))
    if kind == OrderActor.AGENT and order.placed_by_id != actor.user.id:
        raise NotAllowed(_("Agents act only on the orders they placed."))


def may_take(actor: Actor, order: CardOrder, action: OrderAction) -> bool:
    """Whether the page should offer `action` to the actor now."""
    kind = actor_kind(actor)
    if kind is None or not may(action, order.state, kind):
        return False
    try:
        _check_scope(actor, order, kind)
    except NotAllowed:
        return False
    return True


# --- what the customer sends ---------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    holder_id: int
    quantity: int


@dataclass(frozen=True)
class Delivery:
    name: str
    postal_code: str
    address: str
    phone: str


@dataclass(frozen=True)
class OrderDetails:
    """A draft as the form sends it."""

    lines: tuple[OrderLine, ...]
    design: CardDesign
    delivery: Delivery
    note: str = ""


def default_delivery(organisation: Organisation) -> Delivery:
    """The delivery address the form starts from: the registered information (R-62)."""
    return Delivery(
        name=(organisation.operations_contact_name or organisation.legal_name)[:MAX_DELIVERY_NAME],
        postal_code=organisation.postal_code[:MAX_POSTAL_CODE],
        address=organisation.address[:MAX_ADDRESS],
        phone=organisation.phone[:MAX_PHONE],
    )


def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str:
    value = (value or "").strip()
    if "\x00" in value or _CONTROL.search(value):
        raise PortalError(_("This text contains a character that cannot be kept."), field=field)
    if required and not value:
        raise PortalError(_("This field is required."), field=field)
    if len(value) > limit:
        raise PortalError(_("Use at most %(max)d characters.", max=limit), field=field)
    return value


def _one_line(value: str | None, field: str, limit: int) -> str:
    value = _text(value, field, limit)
    if "\n" in value or "\r" in value or "\t" in value:
        raise PortalError(_("Write this on one line."), field=field)
    return value


def clean_delivery(delivery: Delivery) -> Delivery:
    """The delivery address as stored: postal code as 123-4567, phone in half-width digits."""
    postal = _DASHES.sub("-", unicodedata.normalize("NFKC", delivery.postal_code or "")).strip()
    match = _POSTAL_CODE.match(postal)
    if not match:
        raise PortalError(_("Enter a postal code like 100-0001."), field="delivery_postal_code")
    phone = _DASHES.sub("-", unicodedata.normalize("NFKC", delivery.phone or "")).strip()
    phone = _one_line(phone, "delivery_phone", MAX_PHONE)
    if not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 6:
        raise PortalError(_("Enter a phone number like 03-1234-5678."), field="delivery_phone")
    return Delivery(
        name=_one_line(delivery.name, "delivery_name", MAX_DELIVERY_NAME),
        postal_code=f"{match.group(1)}-{match.group(2)}",
        address=_one_line(delivery.address, "delivery_address", MAX_ADDRESS),
        phone=phone,
    )


def _clean_lines(organisation_id: int, lines: Sequence[OrderLine]) -> dict[int, CardHolder]:
    """The holders chosen, each once, each the organisation's, with a quantity in bounds."""
    if not lines:
        raise PortalError(_("Choose at least one card holder."), field="holders")
    if len(lines) > MAX_HOLDERS_PER_ORDER:
        raise PortalError(
            _("One order takes at most %(max)d card holders.", max=MAX_HOLDERS_PER_ORDER),
            field="holders",
        )
    ids = [line.holder_id for line in lines]
    if len(set(ids)) != len(ids):
        raise PortalError(_("Each card holder can be chosen once."), field="holders")
    for line in lines:
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise PortalError(
                _("Order between 1 and %(max)d cards for each holder.", max=MAX_QUANTITY),
                field="holders",
            )
    holders = {
        h.id: h
        for h in db.session.scalars(
            sa.select(CardHolder).where(
                CardHolder.id.in_(ids), CardHolder.organisation_id == organisation_id
            )
        )
    }
    if len(holders) != len(ids):
        raise PortalError(
            _("Some of the chosen card holders are no longer registered. Choose again."),
            field="holders",
        )
    return holders


def _copy_holder(item: CardOrderItem, holder: CardHolder) -> None:
    """The card is printed from the holder's details as the order was sent."""
    item.holder = holder
    item.name = holder.name
    item.name_kana = holder.name_kana
    item.employee_number = holder.employee_number
    item.department = holder.department
    item.title = holder.title


@dataclass(frozen=True)
class _Checked:
    design: CardDesign
    delivery: Delivery
    note: str
    holders: dict[int, CardHolder]


def _check_details(organisation_id: int, details: OrderDetails) -> _Checked:
    """Everything the form sent, bounded and checked (nothing is changed)."""
    delivery = clean_delivery(details.delivery)
    note = _text(details.note, "note", MAX_NOTE, required=False)
    if details.design not in tuple(CardDesign):
        raise PortalError(_("Choose a card design."), field="design")
    holders = _clean_lines(organisation_id, details.lines)
    return _Checked(CardDesign(details.design), delivery, note, holders)


def _apply_details(order: CardOrder, details: OrderDetails, checked: _Checked) -> None:
    order.design = checked.design
    order.delivery_name = checked.delivery.name
    order.delivery_postal_code = checked.delivery.postal_code
    order.delivery_address = checked.delivery.address
    order.delivery_phone = checked.delivery.phone
    order.note = checked.note
    kept = {item.holder_id: item for item in order.items if item.holder_id is not None}
    order.items = []
    for line in details.lines:
        item = kept.get(line.holder_id) or CardOrderItem()
        _copy_holder(item, checked.holders[line.holder_id])
        item.quantity = line.quantity
        order.items.append(item)


def create_draft(actor: Actor, details: OrderDetails, *, ip: str = "") -> CardOrder:
    """A draft order of the actor's organisation (administrators, and agents for a client)."""
    kind = actor_kind(actor)
    organisation = actor.organisation
    if (
        organisation is None
        or kind not in (OrderActor.CUSTOMER_ADMIN, OrderActor.AGENT)
        or not can_place_card_orders(actor)
    ):
        raise NotAllowed(_("You may see orders but not place them."))
    registration = inet_registrations.open_registration(organisation.id)
    if registration is None:
        raise Conflict(
            inet_registrations.ordering_refusal(organisation.id, clock.today())
            or _("Your organisation is not registered for I-NET SERVICE.")
        )
    order = CardOrder(
        organisation_id=organisation.id,
        registration=registration,
        state=OrderState.DRAFT,
        placed_by_id=actor.user.id,
        placed_entry_id=actor.entry.id if actor.entry else None,
        created_at=clock.now(),
    )
    _apply_details(order, details, _check_details(organisation.id, details))
    db.session.add(order)
    db.session.flush()
    _event(actor, order, "create", None, OrderState.DRAFT)
    audit.record(
        "card_order.drafted",
        actor=actor,
        organisation_id=order.organisation_id,
        subject=order,
        ip=ip,
        holders=len(order.items),
        cards=order.card_count,
    )
    return order


def update_draft(actor: Actor, order: CardOrder, details: OrderDetails, *, ip: str = "") -> None:
    """Change a draft; once sent, an order is what was sent."""
    kind = _kind_for(actor, order, OrderAction.SUBMIT, check_state=False)
    if order.state != OrderState.DRAFT:
        raise OrderConflict(_conflict_message(OrderAction.SUBMIT, order, kind))
    checked = _check_details(order.organisation_id, details)
    # Only a draft is changed: the row is held from here to the commit, so a draft sent
    # meanwhile keeps what was sent.
    begin_writing()
    held = db.session.execute(
        sa.update(CardOrder)
        .where(CardOrder.id == order.id, CardOrder.state == OrderState.DRAFT)
        .values(state=OrderState.DRAFT)
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        db.session.refresh(order)
        raise OrderConflict(_conflict_message(OrderAction.SUBMIT, order, kind))
    _apply_details(order, details, checked)
    db.session.flush()
    audit.record(
        "card_order.draft_changed",
        actor=actor,
        organisation_id=order.organisation_id,
        subject=order,
        ip=ip,
        holders=len(order.items),
        cards=order.card_count,
    )


def submission_refusal(order: CardOrder) -> str | None:
    """Why the draft cannot be sent today, or None (the registration, photos, holders)."""
    refusal = inet_registrations.ordering_refusal(order.organisation_id, clock.today())
    if refusal is not None:
        return refusal
    if not order.items:
        return _("Choose at least one card holder.")
    if any(item.holder is None for item in order.items):
        return _("Some of the chosen card holders are no longer registered. Change the order.")
    missing = [
        item.holder.name for item in order.items if item.holder and not item.holder.photo_key
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        return _("A card cannot be made without a photo. Add a photo for: %(names)s.", names=shown)
    return None


# --- steps -----------------------------------------------------------------------------------


def submit(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    """Send a draft: the holders' details are copied as they are now; a receipt is e-mailed.
    Not yet a contract: that is the confirmation (R-81)."""
    kind = _kind_for(actor, order, OrderAction.SUBMIT)
    refusal = submission_refusal(order)
    if refusal is not None:
        raise PortalError(refusal, field="holders")
    for item in order.items:
        assert item.holder is not None
        _copy_holder(item, item.holder)
    db.session.flush()
    return _step(actor, kind, order, OrderAction.SUBMIT, ip=ip)


def withdraw(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    """Take back a sent order before it is confirmed, or throw a draft away."""
    action = OrderAction.DISCARD if order.state == OrderState.DRAFT else OrderAction.WITHDRAW
    kind = _kind_for(actor, order, action)
    return _step(actor, kind, order, action, ip=ip)


def cancel(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    """R-82: the customer's administrator cancels a confirmed order, in the portal, until it
    is accepted; an acceptance that got there first wins and this is refused plainly."""
    kind = _kind_for(actor, order, OrderAction.CANCEL)
    return _step(actor, kind, order, OrderAction.CANCEL, ip=ip)


def confirm(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    """R-81: production sends 注文確認連絡; the contract is formed."""
    kind = _kind_for(actor, order, OrderAction.CONFIRM)
    return _step(actor, kind, order, OrderAction.CONFIRM, ip=ip)


def accept(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    """R-82: production sends 注文受付連絡; the cancel window closes."""
    kind = _kind_for(actor, order, OrderAction.ACCEPT)
    return _step(actor, kind, order, OrderAction.ACCEPT, ip=ip)


def start_production(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    kind = _kind_for(actor, order, OrderAction.START_PRODUCTION)
    return _step(actor, kind, order, OrderAction.START_PRODUCTION, ip=ip)


def clean_shipment(carrier: str | None, tracking_number: str | None) -> tuple[str, str]:
    carrier = _one_line(carrier, "carrier", MAX_CARRIER)
    tracking = unicodedata.normalize("NFKC", tracking_number or "").strip()
    tracking = _one_line(_DASHES.sub("-", tracking), "tracking_number", MAX_TRACKING_NUMBER)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\- ]*", tracking):
        raise PortalError(
            _("Enter the tracking number in letters, digits and hyphens."),
            field="tracking_number",
        )
    return carrier, tracking


def ship(
    actor: Actor, order: CardOrder, carrier: str, tracking_number: str, *, ip: str = ""
) -> CardOrder:
    kind = _kind_for(actor, order, OrderAction.SHIP)
    carrier, tracking_number = clean_shipment(carrier, tracking_number)
    return _step(
        actor,
        kind,
        order,
        OrderAction.SHIP,
        ip=ip,
        values={"carrier": carrier, "tracking_number": tracking_number},
    )


def deliver(actor: Actor, order: CardOrder, *, ip: str = "") -> CardOrder:
    kind = _kind_for(actor, order, OrderAction.DELIVER)
    return _step(actor, kind, order, OrderAction.DELIVER, ip=ip)


PRODUCTION_STEPS = {
    OrderAction.CONFIRM: confirm,
    OrderAction.ACCEPT: accept,
    OrderAction.START_PRODUCTION: start_production,
    OrderAction.DELIVER: deliver,
}


def check(actor: Actor, order: CardOrder, action: OrderAction) -> None:
    """Raise as the step would now (NotAllowed, OrderConflict), changing nothing: what the
    confirmation pages ask before they ask the user."""
    _kind_for(actor, order, action)


def _kind_for(
    actor: Actor, order: CardOrder, action: OrderAction, *, check_state: bool = True
) -> OrderActor:
    """The actor's kind, when the rules let that kind take `action` at all; the state is
    checked against what the actor last saw (the UPDATE checks it again)."""
    kind = actor_kind(actor)
    allowed = transition(action).actors
    if kind is None or kind not in allowed:
        if action == OrderAction.CANCEL:
            raise NotAllowed(
                _("Only your organisation's administrators can cancel an order, in the portal.")
            )
        raise NotAllowed(_("You may not do this to the order."))
    _check_scope(actor, order, kind)
    if check_state and not may(action, order.state, kind):
        raise OrderConflict(_conflict_message(action, order, kind))
    return kind


def _step(
    actor: Actor,
    kind: OrderActor,
    order: CardOrder,
    action: OrderAction,
    *,
    ip: str,
    values: dict[str, Any] | None = None,
) -> CardOrder:
    """Move the order with one conditional UPDATE; the loser of a race is told plainly."""
    t = transition(action)
    now = clock.now()
    begin_writing()  # SQLite: take the write lock now, so racing steps wait their turn
    moved = db.session.execute(
        sa.update(CardOrder)
        .where(CardOrder.id == order.id, CardOrder.state == t.source)
        .values(state=t.target, **{STAMPS[t.target]: now}, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(order)  # what the winner left, when this step lost
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise OrderConflict(_conflict_message(action, order, kind))
    _event(actor, order, action.value, t.source, t.target)
    audit.record(
        f"card_order.{action.value}",
        actor=actor,
        organisation_id=order.organisation_id,
        subject=order,
        ip=ip,
        number=order.number,
        from_state=t.source.value,
        to_state=t.target.value,
        **(values or {}),
    )
    if action in _NOTICES:
        _notify(actor, order, action)
    return order


def _event(
    actor: Actor,
    order: CardOrder,
    action: str,
    source: OrderState | None,
    target: OrderState,
) -> None:
    db.session.add(
        CardOrderEvent(
            order_id=order.id,
            action=action,
            from_state=source,
            to_state=target,
            at=clock.now(),
            user_id=actor.user.id,
            entry_id=actor.entry.id if actor.entry else None,
        )
    )


def _conflict_message(action: OrderAction, order: CardOrder, kind: OrderActor) -> str:
    """What happened first, in plain words, and what it means for this step."""
    state = order.state
    when = tokyo_minute(stamp(order))
    if action == OrderAction.CANCEL and why_not_cancellable(state) == CancelRefusal.ACCEPTED:
        return _(
            "This order was accepted on %(when)s, before your cancellation: it can no longer "
            "be cancelled.",
            when=tokyo_minute(order.accepted_at),
        )
    if action == OrderAction.CANCEL and state in (OrderState.DRAFT, OrderState.SUBMITTED):
        return _("This order is not confirmed yet: withdraw it instead.")
    if state == transition(action).target:
        return _(
            "This was already done on %(when)s: the order is “%(state)s”. Nothing was changed.",
            when=when,
            state=state_name(state),
        )
    if state == OrderState.CANCELLED:
        return _(
            "The customer cancelled this order on %(when)s: it cannot be %(done)s.",
            when=when,
            done=_done(action),
        )
    if state == OrderState.WITHDRAWN:
        return _(
            "This order was withdrawn on %(when)s: it cannot be %(done)s.",
            when=when,
            done=_done(action),
        )
    if action == OrderAction.WITHDRAW and state == OrderState.CONFIRMED:
        if kind == OrderActor.CUSTOMER_ADMIN:
            return _(
                "This order was confirmed on %(when)s, before your withdrawal: it can no "
                "longer be withdrawn. You can cancel it until it is accepted.",
                when=when,
            )
        return _(
            "This order was confirmed on %(when)s, before your withdrawal: it can no longer "
            "be withdrawn. Until it is accepted, the customer's administrators can cancel it.",
            when=when,
        )
    if action in (OrderAction.SUBMIT, OrderAction.DISCARD) and state != OrderState.DRAFT:
        return _(
            "This order was sent on %(when)s: it is no longer a draft.",
            when=tokyo_minute(order.submitted_at),
        )
    return _(
        "This order is “%(state)s” since %(when)s: it cannot be %(done)s now. Nothing was changed.",
        state=state_name(state),
        when=when,
        done=_done(action),
    )


def _done(action: OrderAction) -> str:
    """The step as the end of "it cannot be …"."""
    words = {
        OrderAction.SUBMIT: _("sent"),
        OrderAction.DISCARD: _("discarded"),
        OrderAction.WITHDRAW: _("withdrawn"),
        OrderAction.CONFIRM: _("confirmed"),
        OrderAction.CANCEL: _("cancelled"),
        OrderAction.ACCEPT: _("accepted"),
        OrderAction.START_PRODUCTION: _("put into production"),
        OrderAction.SHIP: _("shipped"),
        OrderAction.DELIVER: _("marked as delivered"),
    }
    return words[action]


def notice_addresses(order: CardOrder) -> list[str]:
    """The registration's operations manager and the organisation's administrators."""
    registration: InetRegistration = order.registration
    return list(
        dict.fromkeys(
            a
            for a in (
                registration.operations_manager_email,
                *mail.administrator_addresses(order.organisation),
            )
            if a
        )
    )


def _notify(actor: Actor, order: CardOrder, action: OrderAction) -> None:
    organisation = order.organisation
    who = actor.user.name
    if actor.user.partner is not None:
        who = f"{actor.user.name} ({actor.user.partner.name})"
    with force_locale(organisation.locale):
        context = {
            "order": order,
            "design_name": design_name(order.design),
            "by": who,
            "by_provider": is_production_staff(actor),
            "holders": len(order.items),
            "cards": order.card_count,
            "order_url": mail.absolute_url("inet.order", order_id=order.id),
        }
    mail.notify_organisation(
        organisation,
        _NOTICES[action],
        to=notice_addresses(order),
        affects_contract=action in _CONTRACT_NOTICES,
        context=context,
    )


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressStep:
    state: OrderState
    at: datetime | None
    reached: bool
    current: bool

    @property
    def name(self) -> str:
        return state_name(self.state)


def progress(order: CardOrder) -> list[ProgressStep]:
    """Where the order is: the happy path with the date of each step reached; a withdrawn or
    cancelled order ends with that state."""
    steps = []
    for state in PROGRESS:
        at = stamp(order, state)
        steps.append(ProgressStep(state, at, at is not None, order.state == state))
    if order.state in (OrderState.WITHDRAWN, OrderState.CANCELLED):
        steps = [s for s in steps if s.reached]
        steps.append(ProgressStep(order.state, stamp(order), True, True))
    return steps


@dataclass(frozen=True)
class OrderRow:
    order: CardOrder
    cards: int
    holders: int


def _with_counts(query: sa.Select) -> sa.Select:
    counts = (
        sa.select(
            CardOrderItem.order_id,
            sa.func.sum(CardOrderItem.quantity).label("cards"),
            sa.func.count(CardOrderItem.id).label("holders"),
        )
        .group_by(CardOrderItem.order_id)
        .subquery()
    )
    return query.outerjoin(counts, counts.c.order_id == CardOrder.id).add_columns(
        sa.func.coalesce(counts.c.cards, 0), sa.func.coalesce(counts.c.holders, 0)
    )


def page_of(
    visible: sa.Select[tuple[CardOrder]], page: int, *, size: int = PAGE_SIZE
) -> tuple[list[OrderRow], bool]:
    """One page of the orders the actor may see (a scoped query), newest first."""
    page = max(1, min(page, 10_000))
    query = _with_counts(visible).order_by(CardOrder.created_at.desc(), CardOrder.id.desc())
    found = db.session.execute(query.limit(size + 1).offset((page - 1) * size)).all()
    rows = [OrderRow(o, int(c), int(h)) for o, c, h in found[:size]]
    return rows, len(found) > size


@dataclass(frozen=True)
class QueueFilter:
    state: OrderState | None = None  # None: every state that waits on production
    organisation: str = ""
    submitted_from: date | None = None
    submitted_to: date | None = None


def _production_query(filters: QueueFilter) -> sa.Select:
    query = sa.select(CardOrder).where(CardOrder.state != OrderState.DRAFT)
    if filters.state is None:
        query = query.where(CardOrder.state.in_(WAITING_STATES))
    else:
        query = query.where(CardOrder.state == filters.state)
    if filters.organisation:
        pattern = filters.organisation.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            CardOrder.organisation_id.in_(
                sa.select(Organisation.id).where(
                    sa.or_(
                        Organisation.legal_name.ilike(f"%{pattern}%", escape="\\"),
                        Organisation.legal_name_kana.ilike(f"%{pattern}%", escape="\\"),
                    )
                )
            )
        )
    if filters.submitted_from is not None:
        start = datetime.combine(filters.submitted_from, time(), TOKYO)
        query = query.where(CardOrder.submitted_at >= start)
    if filters.submitted_to is not None:
        end = datetime.combine(filters.submitted_to + timedelta(days=1), time(), TOKYO)
        query = query.where(CardOrder.submitted_at < end)
    return query


def production_queue(
    filters: QueueFilter, page: int, *, size: int = PAGE_SIZE
) -> tuple[list[OrderRow], bool]:
    """Orders for production: those waiting on it oldest first, history newest first."""
    page = max(1, min(page, 10_000))
    oldest_first = filters.state is None or filters.state not in FINAL_STATES
    order_by = (
        (CardOrder.submitted_at.asc(), CardOrder.id.asc())
        if oldest_first
        else (CardOrder.submitted_at.desc(), CardOrder.id.desc())
    )
    query = _with_counts(_production_query(filters)).order_by(*order_by)
    found = db.session.execute(query.limit(size + 1).offset((page - 1) * size)).all()
    return [OrderRow(o, int(c), int(h)) for o, c, h in found[:size]], len(found) > size


def counts_by_state() -> dict[OrderState, int]:
    """How many orders are in each state (drafts are the customer's own business)."""
    found = dict(
        db.session.execute(
            sa.select(CardOrder.state, sa.func.count())
            .where(CardOrder.state != OrderState.DRAFT)
            .group_by(CardOrder.state)
        ).all()
    )
    return {state: found.get(state, 0) for state in OrderState if state != OrderState.DRAFT}


def holders_for_order(organisation_id: int) -> list[CardHolder]:
    """The organisation's card holders to choose from, by employee number."""
    return list(
        db.session.scalars(
            sa.select(CardHolder)
            .where(CardHolder.organisation_id == organisation_id)
            .order_by(CardHolder.employee_number, CardHolder.id)
        )
    )


def item_of_holder(order: CardOrder, holder_id: int) -> CardOrderItem | None:
    return next((i for i in order.items if i.holder_id == holder_id), None)


def events_of(order: CardOrder) -> Iterable[CardOrderEvent]:
    return sorted(order.events, key=lambda e: (e.at, e.id))
