"""/api/v1 for I-NET SERVICE: card holders, card orders and their state, cancelling an order
within its window (R-81, R-82, R-85). Free service: nothing here is an amount.

Who sees what through a token (a token is never inside a client's portal):
- card holders: the customer's own administrators (R-85);
- card orders: the customer's administrators (their organisation's), agents (the orders they
  placed, R-85), production staff (every order);
- cancelling: the customer's own administrators, while the order is confirmed and not yet
  accepted (R-82 reading).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import request
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from portal.blueprints.api.auth import api_view, current_api_actor
from portal.blueprints.api.errors import ApiError, bad_request, forbidden, not_found
from portal.blueprints.api.serialize import instant
from portal.blueprints.api.views import bp
from portal.domain.inet import OrderState, why_not_cancellable
from portal.extensions import db
from portal.models import CardHolder, CardOrder
from portal.permissions import (
    Actor,
    can_cancel_card_orders,
    can_manage_card_holders,
    is_agent,
    is_customer_admin,
    is_production_staff,
)
from portal.services import card_orders as order_service
from portal.services.errors import PortalError
from portal.web import client_ip

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 50


def _page() -> tuple[int, int]:
    """?page= (from 1) and ?per_page= (1..200), bounded before they reach the database."""

    def number(name: str, default: int, top: int) -> int:
        raw = request.args.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= top:
            raise bad_request(_("Give a whole number from 1 to %(top)s.", top=top), field=name)
        return int(raw)

    return number("page", 1, 100_000), number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)


def _paged(query: sa.Select[Any], key: str, serialize: Any) -> dict[str, Any]:
    page, per_page = _page()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {
        key: [serialize(row) for row in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
        "next_page": page + 1 if page * per_page < total else None,
    }


# --- card holders ------------------------------------------------------------------------


def _holder(holder: CardHolder) -> dict[str, Any]:
    return {
        "id": holder.id,
        "name": holder.name,
        "name_kana": holder.name_kana,
        "employee_number": holder.employee_number,
        "department": holder.department,
        "title": holder.title,
        "has_photo": holder.photo_key is not None,
        "updated_at": instant(holder.updated_at),
    }


def _holders_query(actor: Actor) -> sa.Select[tuple[CardHolder]] | None:
    """R-85: the organisation's holders for its own administrators; None for anyone else."""
    if not can_manage_card_holders(actor):
        return None
    return sa.select(CardHolder).where(CardHolder.organisation_id == actor.organisation_id)


@bp.get("/card-holders")
@api_view()
def card_holders():
    """R-85: the organisation's card holders, for its own administrators, by page."""
    query = _holders_query(current_api_actor())
    if query is None:
        raise forbidden(_("Only the customer's administrators see card holders."))
    return _paged(query.order_by(CardHolder.employee_number, CardHolder.id), "holders", _holder)


@bp.get("/card-holders/<int:holder_id>")
@api_view()
def card_holder(holder_id: int):
    """One holder; for anyone who may see none, every id answers 404 (ids reveal nothing)."""
    query = _holders_query(current_api_actor())
    found = None
    if query is not None:
        found = db.session.scalar(query.where(CardHolder.id == holder_id))
    if found is None:
        raise not_found()
    return _holder(found)


# --- card orders -------------------------------------------------------------------------


def _orders_query(actor: Actor) -> sa.Select[tuple[CardOrder]] | None:
    """What a token's user may see of orders (R-85); None for those who may see none."""
    query = sa.select(CardOrder)
    if is_production_staff(actor):
        return query
    if is_customer_admin(actor):
        return query.where(CardOrder.organisation_id == actor.organisation_id)
    if is_agent(actor):
        return query.where(CardOrder.placed_by_id == actor.user.id)
    return None


def _order(order: CardOrder, *, with_items: bool = False) -> dict[str, Any]:
    refusal = why_not_cancellable(order.state)
    data: dict[str, Any] = {
        "id": order.id,
        "number": order.number,
        "organisation_id": order.organisation_id,
        "state": order.state.value,
        "design": order.design.value,
        "cards": order.card_count,
        "created_at": instant(order.created_at),
        "submitted_at": instant(order.submitted_at),
        "confirmed_at": instant(order.confirmed_at),
        "accepted_at": instant(order.accepted_at),
        "production_started_at": instant(order.production_started_at),
        "shipped_at": instant(order.shipped_at),
        "delivered_at": instant(order.delivered_at),
        "withdrawn_at": instant(order.withdrawn_at),
        "cancelled_at": instant(order.cancelled_at),
        "carrier": order.carrier or None,
        "tracking_number": order.tracking_number or None,
        "cancellable": refusal is None,
        "cancel_refusal": refusal.value if refusal is not None else None,
    }
    if with_items:
        data["items"] = [
            {
                "holder_id": item.holder_id,
                "name": item.name,
                "name_kana": item.name_kana,
                "employee_number": item.employee_number,
                "department": item.department,
                "title": item.title,
                "quantity": item.quantity,
            }
            for item in order.items
        ]
        data["events"] = [
            {
                "action": event.action,
                "from_state": event.from_state.value if event.from_state else None,
                "to_state": event.to_state.value,
                "at": instant(event.at),
            }
            for event in order.events
        ]
    return data


def _order_or_404(actor: Actor, order_id: int) -> CardOrder:
    query = _orders_query(actor)
    found = None
    if query is not None:
        found = db.session.scalar(
            query.where(CardOrder.id == order_id).options(
                selectinload(CardOrder.items), selectinload(CardOrder.events)
            )
        )
    if found is None:
        raise not_found()
    return found


@bp.get("/card-orders")
@api_view()
def card_orders():
    """R-81/R-82: orders and where each is, newest first, by page."""
    query = _orders_query(current_api_actor())
    if query is None:
        raise forbidden(
            _("Only the customer's administrators, its agents and production see orders.")
        )
    query = query.options(selectinload(CardOrder.items))
    state = request.args.get("state")
    if state is not None:
        try:
            query = query.where(CardOrder.state == OrderState(state))
        except ValueError:
            raise bad_request(_("There is no such order state."), field="state") from None
    return _paged(query.order_by(CardOrder.id.desc()), "orders", _order)


@bp.get("/card-orders/<int:order_id>")
@api_view()
def card_order(order_id: int):
    return _order(_order_or_404(current_api_actor(), order_id), with_items=True)


@bp.post("/card-orders/<int:order_id>/cancel")
@api_view()
def cancel_card_order(order_id: int):
    """R-82: the customer cancels a confirmed order until it is accepted; an acceptance that
    crossed the cancellation wins or loses as one conditional update decides (409)."""
    actor = current_api_actor()
    found = _order_or_404(actor, order_id)
    if not can_cancel_card_orders(actor):
        raise forbidden(_("Only the customer's administrators cancel an order."))
    try:
        order_service.cancel(actor, found, ip=client_ip())
    except order_service.OrderConflict as exc:
        db.session.rollback()
        raise ApiError(409, "not_cancellable", str(exc)) from exc
    except PortalError as exc:
        db.session.rollback()
        raise ApiError(409, "not_cancellable", str(exc), field=exc.field) from exc
    db.session.commit()
    db.session.refresh(found)
    return _order(_order_or_404(actor, order_id), with_items=True)
