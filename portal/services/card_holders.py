"""Card holders: the employees who get ID cards, and their photos (R-83, R-85).

Only the organisation's own administrators manage them (permissions.can_manage_card_holders);
adding and changing needs an open I-NET SERVICE registration, looking and removing do not
(after the registration ends, the customer still sees what it gave us until the photos are
deleted, and may delete it sooner).

The text rules here are shared by the one-holder form and the CSV import: the same value is
accepted or refused with the same message in both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import CardHolder, CardOrder, CardOrderItem, PhotoDeletion
from portal.permissions import Actor, can_manage_card_holders
from portal.services import audit
from portal.services.errors import Conflict, NotAllowed
from portal.services.inet_registrations import open_registration
from portal.services.photo_storage import Photo, storage
from portal.spreadsheet import starts_like_a_formula
from portal.transaction import begin_writing

# --- the text of a holder ------------------------------------------------------------------

# Field name -> (label, maximum length, required). Lengths are the columns' (models/inet.py).
FIELDS: dict[str, tuple[object, int, bool]] = {
    "name": (_l("Name"), 100, True),
    "name_kana": (_l("Name in kana"), 100, False),
    "employee_number": (_l("Employee number"), 40, True),
    "department": (_l("Department"), 100, False),
    "title": (_l("Job title"), 100, False),
}

_HALF_WIDTH_KANA = re.compile("[\uff61-\uff9f]+")


def normalise(field: str, value: str) -> str:
    """The value as stored: trimmed; half-width katakana (ｶﾀｶﾅ, from older systems and
    Excel) as full-width (カタカナ); the employee number in plain width (Ｅ００１ is E001), so
    that one number cannot be registered twice in two widths."""
    value = _HALF_WIDTH_KANA.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), value)
    if field == "employee_number":
        value = unicodedata.normalize("NFKC", value)
    return value.strip(" \t\u3000")


def text_problem(field: str, value: str) -> str | None:
    """Why a value (as typed) cannot be stored in `field`, or None."""
    label, max_length, required = FIELDS[field]
    if starts_like_a_formula(value.lstrip("\t")):
        return _(
            "%(field)s cannot start with = + - or @ (a spreadsheet would run it as a formula).",
            field=label,
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return _("%(field)s contains a character that cannot be used.", field=label)
    cleaned = normalise(field, value)
    if required and not cleaned:
        return _required(field)
    if len(cleaned) > max_length:
        return _("%(field)s: use at most %(max)d characters.", field=label, max=max_length)
    return None


def _required(field: str) -> str:
    if field == "name":
        return _("Enter the holder's name.")
    return _("Enter the employee number.")


@dataclass(frozen=True)
class HolderDetails:
    """A holder's text, normalised and checked (see `clean`)."""

    name: str
    name_kana: str
    employee_number: str
    department: str
    title: str


def clean(raw: Mapping[str, str | None]) -> tuple[HolderDetails | None, dict[str, str]]:
    """The holder's details from what was typed or imported, or the problems by field."""
    problems: dict[str, str] = {}
    values: dict[str, str] = {}
    for field in FIELDS:
        value = raw.get(field) or ""
        problem = text_problem(field, value)
        if problem:
            problems[field] = problem
        else:
            values[field] = normalise(field, value)
    if problems:
        return None, problems
    return HolderDetails(**values), {}


# --- the list ------------------------------------------------------------------------------

PAGE_SIZE = 50
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True)
class HolderPage:
    holders: list[CardHolder]
    total: int
    page: int
    pages: int
    search: str


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` as itself (% and _ are not wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def holders_page(actor: Actor, *, search: str = "", page: int = 1) -> HolderPage:
    """A page of the organisation's holders, by employee number, found by name, kana or
    number (the search is normalised as the values were: ｶﾅ finds カナ)."""
    _require(actor)
    search = search.replace("\x00", "")[:MAX_SEARCH_LENGTH]
    query = sa.select(CardHolder).where(CardHolder.organisation_id == actor.organisation_id)
    wanted = normalise("name", search)
    if wanted:
        pattern = _like(wanted)
        number = _like(normalise("employee_number", search))
        query = query.where(
            sa.or_(
                CardHolder.name.ilike(pattern, escape="\\"),
                CardHolder.name_kana.ilike(pattern, escape="\\"),
                CardHolder.employee_number.ilike(number, escape="\\"),
            )
        )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    holders = list(
        db.session.scalars(
            query.order_by(CardHolder.employee_number, CardHolder.id)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    return HolderPage(holders=holders, total=total, page=page, pages=pages, search=wanted)


def employee_number_taken(organisation_id: int, number: str, *, other_than: int | None = None):
    """The holder of the organisation that has this employee number, if any."""
    query = sa.select(CardHolder).where(
        CardHolder.organisation_id == organisation_id, CardHolder.employee_number == number
    )
    if other_than is not None:
        query = query.where(CardHolder.id != other_than)
    return db.session.scalar(query)


def number_taken_message(number: str, holder: CardHolder) -> str:
    return _(
        "Employee number %(number)s is already registered for %(name)s.",
        number=number,
        name=holder.name,
    )


# --- changes -------------------------------------------------------------------------------

# A holder on an order whose cards are still to be printed keeps its photo (the printer
# uses it) and cannot be removed; its cards are printed from the details sent.
_CARDS_TO_PRINT = (
    OrderState.DRAFT,
    OrderState.SUBMITTED,
    OrderState.CONFIRMED,
    OrderState.ACCEPTED,
    OrderState.IN_PRODUCTION,
)


def _require(actor: Actor) -> None:
    if actor.organisation_id is None or not can_manage_card_holders(actor):
        raise NotAllowed(_("Only the organisation's administrators manage card holders."))


def _require_registered(actor: Actor):
    registration = open_registration(actor.organisation_id)  # type: ignore[arg-type]
    if registration is None:
        raise Conflict(_("Your organisation is not registered for I-NET SERVICE."))
    return registration


def _own(actor: Actor, holder: CardHolder) -> None:
    _require(actor)
    if holder.organisation_id != actor.organisation_id:
        raise NotAllowed(_("Only the organisation's administrators manage card holders."))


def add(
    actor: Actor, details: HolderDetails, photo: Photo | None = None, *, ip: str = ""
) -> CardHolder:
    """A new holder (with its photo, already processed by services.photos)."""
    _require(actor)
    _require_registered(actor)
    org_id = actor.organisation_id
    assert org_id is not None
    taken = employee_number_taken(org_id, details.employee_number)
    if taken is not None:
        raise Conflict(
            number_taken_message(details.employee_number, taken), field="employee_number"
        )
    holder = CardHolder(organisation_id=org_id, created_by_id=actor.user.id, **vars(details))
    _insert(holder, details.employee_number)
    if photo is not None:
        holder.photo_key = storage().put(org_id, photo)
    audit.record(
        "card_holder_added",
        actor=actor,
        subject=holder,
        ip=ip,
        with_photo=photo is not None,
    )
    return holder


def _insert(holder: CardHolder, number: str) -> None:
    """Add the holder; the same employee number sent twice at once is refused once."""
    begin_writing()  # SQLite: the savepoint must not be the transaction (portal/transaction.py)
    try:
        with db.session.begin_nested():
            db.session.add(holder)
    except IntegrityError:
        raise Conflict(
            _("Employee number %(number)s is already registered.", number=number),
            field="employee_number",
        ) from None


def update(actor: Actor, holder: CardHolder, details: HolderDetails, *, ip: str = "") -> None:
    """Change a holder's text (orders already sent keep the details they were sent with)."""
    _own(actor, holder)
    _require_registered(actor)
    taken = employee_number_taken(
        holder.organisation_id, details.employee_number, other_than=holder.id
    )
    if taken is not None:
        raise Conflict(
            number_taken_message(details.employee_number, taken), field="employee_number"
        )
    changed = [f for f in FIELDS if getattr(holder, f) != getattr(details, f)]
    for field in changed:
        setattr(holder, field, getattr(details, field))
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(
            _("Employee number %(number)s is already registered.", number=details.employee_number),
            field="employee_number",
        ) from None
    if changed:
        audit.record("card_holder_changed", actor=actor, subject=holder, ip=ip, fields=changed)


def _printing_order(holder: CardHolder) -> CardOrder | None:
    return db.session.scalar(
        sa.select(CardOrder)
        .join(CardOrderItem, CardOrderItem.order_id == CardOrder.id)
        .where(CardOrderItem.holder_id == holder.id, CardOrder.state.in_(_CARDS_TO_PRINT))
        .order_by(CardOrder.id)
        .limit(1)
    )


def set_photo(actor: Actor, holder: CardHolder, photo: Photo, *, ip: str = "") -> None:
    """Give the holder a photo; the one it replaces is deleted, on the record (R-83)."""
    _own(actor, holder)
    registration = _require_registered(actor)
    order = _printing_order(holder)
    if order is not None and order.state == OrderState.IN_PRODUCTION:
        raise Conflict(
            _(
                "The cards of order %(number)s are being printed with this photo; change it "
                "after they are shipped.",
                number=order.number,
            )
        )
    old_key = holder.photo_key
    holder.photo_key = storage().put(holder.organisation_id, photo)
    if old_key:
        _delete_photo(actor, holder, old_key, "replaced", registration_id=registration.id)
    audit.record(
        "card_holder_photo_set", actor=actor, subject=holder, ip=ip, replaced=bool(old_key)
    )


def check_removal(actor: Actor, holder: CardHolder) -> None:
    """Why the holder cannot be removed now (a Conflict), or nothing."""
    _own(actor, holder)
    order = _printing_order(holder)
    if order is not None:
        raise Conflict(
            _(
                "%(name)s is on order %(number)s, whose cards are not yet shipped. Remove "
                "them after the cards are shipped, or after the order is withdrawn or "
                "cancelled.",
                name=holder.name,
                number=order.number,
            )
        )


def remove(actor: Actor, holder: CardHolder, *, ip: str = "") -> None:
    """Remove the holder and delete its photo, the deletion on the record (R-83). Orders
    already sent keep the holder's details as sent (never the photo)."""
    check_removal(actor, holder)
    registration = open_registration(holder.organisation_id)
    if holder.photo_key:
        _delete_photo(
            actor,
            holder,
            holder.photo_key,
            "holder_removed",
            registration_id=registration.id if registration else None,
            holder_gone=True,
        )
        holder.photo_key = None
    audit.record(
        "card_holder_removed",
        actor=actor,
        organisation_id=holder.organisation_id,
        ip=ip,
        holder_id=holder.id,
        employee_number=holder.employee_number,
    )
    db.session.delete(holder)
    db.session.flush()


def _delete_photo(
    actor: Actor,
    holder: CardHolder,
    key: str,
    reason: str,
    *,
    registration_id: int | None,
    holder_gone: bool = False,
) -> None:
    """Delete one photo from the storage and record the deletion (its SHA-256, never the
    photo), in the same transaction."""
    digest = storage().sha256(holder.organisation_id, key)
    if storage().delete(holder.organisation_id, [key]) == 0:
        return
    db.session.add(
        PhotoDeletion(
            organisation_id=holder.organisation_id,
            registration_id=registration_id,
            # A removed holder's row goes with this transaction: the record keeps no dangling
            # id (SQLite does not enforce the foreign key's SET NULL).
            holder_id=None if holder_gone else holder.id,
            photo_sha256=digest or "",
            reason=reason,
            deleted_by_id=actor.user.id,
        )
    )


def photo_bytes(holder: CardHolder) -> bytes | None:
    """The holder's stored photo (the portal's own JPEG), or None."""
    if not holder.photo_key:
        return None
    return storage().get(holder.organisation_id, holder.photo_key)
