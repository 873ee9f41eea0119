"""I-NET SERVICE: the free ID-card ordering service (R-80..R-85, with their readings).

Pure rules: the order's states and who may move it between them, when a registration's
photos are deleted, when a registration is dormant, and the card's shape. Nothing here
knows what time it is or who is signed in: callers pass dates and an `OrderActor`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from portal.domain.calendar import add_months_clamped


class OrderState(enum.StrEnum):
    """An order's life (reading of R-81/R-82)."""

    DRAFT = "draft"  # being put together by the customer
    SUBMITTED = "submitted"  # sent by the customer; not yet a contract
    CONFIRMED = "confirmed"  # 注文確認連絡 sent: the contract is formed
    ACCEPTED = "accepted"  # 注文受付連絡 sent: the cancel window is closed
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"  # with carrier and tracking number
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"  # a submitted order taken back before confirmation
    CANCELLED = "cancelled"  # a confirmed order cancelled by the customer


class OrderActor(enum.StrEnum):
    """Who moves an order: the kinds of people the readings name."""

    CUSTOMER_ADMIN = "customer_admin"  # the customer's administrator, in the portal
    AGENT = "agent"  # a sales agent or agency acting for its client
    PRODUCTION = "production"  # the provider's production staff


class OrderAction(enum.StrEnum):
    SUBMIT = "submit"
    DISCARD = "discard"  # a draft thrown away (never a contract, nothing to keep)
    WITHDRAW = "withdraw"
    CONFIRM = "confirm"  # sends 注文確認連絡
    CANCEL = "cancel"  # the customer, in the portal, between confirmation and acceptance
    ACCEPT = "accept"  # sends 注文受付連絡: closes the window
    START_PRODUCTION = "start_production"
    SHIP = "ship"
    DELIVER = "deliver"


@dataclass(frozen=True)
class Transition:
    action: OrderAction
    source: OrderState
    target: OrderState
    actors: frozenset[OrderActor]


_CUSTOMER = frozenset({OrderActor.CUSTOMER_ADMIN, OrderActor.AGENT})
_PRODUCTION = frozenset({OrderActor.PRODUCTION})

TRANSITIONS: tuple[Transition, ...] = (
    Transition(OrderAction.SUBMIT, OrderState.DRAFT, OrderState.SUBMITTED, _CUSTOMER),
    Transition(OrderAction.DISCARD, OrderState.DRAFT, OrderState.WITHDRAWN, _CUSTOMER),
    # A submitted order is not yet a contract: whoever placed it may take it back.
    Transition(OrderAction.WITHDRAW, OrderState.SUBMITTED, OrderState.WITHDRAWN, _CUSTOMER),
    Transition(OrderAction.CONFIRM, OrderState.SUBMITTED, OrderState.CONFIRMED, _PRODUCTION),
    # R-82 reading: the customer cancels, on the web; not agents, not staff for it.
    Transition(
        OrderAction.CANCEL,
        OrderState.CONFIRMED,
        OrderState.CANCELLED,
        frozenset({OrderActor.CUSTOMER_ADMIN}),
    ),
    Transition(OrderAction.ACCEPT, OrderState.CONFIRMED, OrderState.ACCEPTED, _PRODUCTION),
    Transition(
        OrderAction.START_PRODUCTION, OrderState.ACCEPTED, OrderState.IN_PRODUCTION, _PRODUCTION
    ),
    Transition(OrderAction.SHIP, OrderState.IN_PRODUCTION, OrderState.SHIPPED, _PRODUCTION),
    Transition(OrderAction.DELIVER, OrderState.SHIPPED, OrderState.DELIVERED, _PRODUCTION),
)
_BY_ACTION = {t.action: t for t in TRANSITIONS}

# States an order never leaves.
FINAL_STATES = frozenset({OrderState.DELIVERED, OrderState.WITHDRAWN, OrderState.CANCELLED})
# The order is a contract from confirmation on, unless cancelled.
CONTRACT_STATES = frozenset(
    {
        OrderState.CONFIRMED,
        OrderState.ACCEPTED,
        OrderState.IN_PRODUCTION,
        OrderState.SHIPPED,
        OrderState.DELIVERED,
    }
)
# The happy path, for showing an order's progress.
PROGRESS: tuple[OrderState, ...] = (
    OrderState.SUBMITTED,
    OrderState.CONFIRMED,
    OrderState.ACCEPTED,
    OrderState.IN_PRODUCTION,
    OrderState.SHIPPED,
    OrderState.DELIVERED,
)


def transition(action: OrderAction) -> Transition:
    return _BY_ACTION[action]


def may(action: OrderAction, state: OrderState, actor: OrderActor) -> bool:
    """Whether `actor` may take `action` on an order in `state`."""
    t = _BY_ACTION[action]
    return t.source == state and actor in t.actors


def actions_for(state: OrderState, actor: OrderActor) -> tuple[OrderAction, ...]:
    """The actions open to `actor` on an order in `state`, in the order of TRANSITIONS."""
    return tuple(t.action for t in TRANSITIONS if t.source == state and actor in t.actors)


def cancel_window_open(state: OrderState) -> bool:
    """R-82: cancellable between the order confirmation and the order acceptance."""
    return state == OrderState.CONFIRMED


class CancelRefusal(enum.StrEnum):
    """Why an order cannot be cancelled (R-82), in the words a page can explain."""

    NOT_YET_CONFIRMED = "not_yet_confirmed"  # submitted: withdraw it instead
    ACCEPTED = "accepted"  # the acceptance e-mail was sent: the window is closed
    ENDED = "ended"  # withdrawn, cancelled or delivered


def why_not_cancellable(state: OrderState) -> CancelRefusal | None:
    """None while the window is open; otherwise the reason (R-82)."""
    if state == OrderState.CONFIRMED:
        return None
    if state in (OrderState.DRAFT, OrderState.SUBMITTED):
        return CancelRefusal.NOT_YET_CONFIRMED
    if state in (OrderState.ACCEPTED, OrderState.IN_PRODUCTION, OrderState.SHIPPED):
        return CancelRefusal.ACCEPTED
    return CancelRefusal.ENDED


# --- photos (R-83) ------------------------------------------------------------------------

# R-83 reading: photos are deleted one month after the usage period ended.
PHOTO_RETENTION_MONTHS = 1


def photos_delete_on(usage_ended_on: date) -> date:
    """R-83: the day a registration's photos are deleted: one month after its usage period
    ended (the same day of the next month, or that month's last day when it has none)."""
    return add_months_clamped(usage_ended_on, PHOTO_RETENTION_MONTHS)


# --- dormant registrations (R-84) --------------------------------------------------------

DORMANT_YEARS = 3


def dormant_since(last_used_on: date) -> date:
    """R-84: the day a registration last used on `last_used_on` becomes dormant (three years
    on; 29 February falls on 28 February)."""
    return add_months_clamped(last_used_on, 12 * DORMANT_YEARS)


def is_dormant(last_used_on: date, today: date) -> bool:
    """R-84: unused (no sign-in, no order) for three years or more."""
    return today >= dormant_since(last_used_on)


# --- the card ------------------------------------------------------------------------------


class CardDesign(enum.StrEnum):
    """The designs the provider prints (names for pages in the templates)."""

    STANDARD = "standard"  # white with the company name in blue
    NAVY = "navy"  # navy band, white lettering
    VISITOR = "visitor"  # large photo, department first


# A portrait ID photo: 3 wide by 4 high (the photo box on every design).
PHOTO_ASPECT = (3, 4)
PHOTO_OUTPUT_SIZE = (600, 800)  # pixels of the stored photo
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # what an upload may weigh
MAX_PHOTO_PIXELS = 40_000_000  # what it may decode to (a decompression bomb is refused)
MIN_PHOTO_SIDE = 240  # below this a printed photo is a blur
MAX_QUANTITY = 10  # cards per holder in one order
MAX_HOLDERS_PER_ORDER = 500
