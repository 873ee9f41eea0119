"""I-NET SERVICE: the customer's card orders (R-81, R-82, R-85).

Administrators and agents (for the client they are in) put an order together as a draft and
send it; a sent order is withdrawn until it is confirmed; a confirmed order is cancelled by
the customer's administrators only, in the portal, until it is accepted (R-82). Staff
viewing as the customer see the list and the order pages, without holders' names or photos
(R-85); agents see the orders they placed.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required

from portal.blueprints.inet import bp
from portal.blueprints.inet.forms_orders import ConfirmForm, OrderForm, order_lines
from portal.blueprints.validators import show_error
from portal.clock import clock
from portal.domain.inet import CancelRefusal, OrderAction, OrderState, why_not_cancellable
from portal.extensions import db
from portal.models import CardOrder, CardOrderItem
from portal.permissions import (
    Actor,
    can_cancel_card_orders,
    can_manage_card_holders,
    can_place_card_orders,
    can_see_card_photos,
    can_see_inet,
    can_use_customer_portal,
    card_orders_visible,
    get_card_order_or_404,
    is_agent,
)
from portal.presentation import tokyo_minute
from portal.services import card_orders, inet_registrations
from portal.services.errors import NotAllowed, PortalError
from portal.web import client_ip, current_actor

HOLDER_PHOTO_ENDPOINT = "inet.holder_photo"  # the holders' pages serve the photos


def render(template: str, **context: Any) -> str:
    """A page of orders, with the words for states, designs and steps."""
    return render_template(
        template,
        state_name=card_orders.state_name,
        design_name=card_orders.design_name,
        action_name=card_orders.action_name,
        stamp=card_orders.stamp,
        **context,
    )


def _inet_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    return actor


def _placer(actor: Actor) -> None:
    if not can_place_card_orders(actor):
        abort(403, _("You may see orders but not place or change them."))


def _to_order(order: CardOrder):
    return redirect(url_for("inet.order", order_id=order.id))


def _refused(order: CardOrder, message: str, status: int = 409):
    """A step the order's state no longer allows: said plainly; nothing changed."""
    return render_template(
        "inet/orders/refused.html",
        message=message,
        back=url_for("inet.order", order_id=order.id),
        back_label=_("Back to order %(number)s", number=order.number),
    ), status


@bp.get("/orders")
@login_required
def orders():
    actor = _inet_actor()
    if not can_see_inet(actor):
        abort(403, _("Card orders are for your organisation's administrators."))
    page = request.args.get("page", 1, type=int) or 1
    rows, has_next = card_orders.page_of(card_orders_visible(actor), page)
    return render(
        "inet/orders/index.html",
        rows=rows,
        page=max(1, page),
        has_next=has_next,
        may_place=can_place_card_orders(actor),
        agent=is_agent(actor),
        refusal=inet_registrations.ordering_refusal(actor.organisation_id, clock.today()),
    )


def _form_page(
    actor: Actor,
    form: OrderForm,
    *,
    order: CardOrder | None = None,
    chosen: dict[int, int] | None = None,
    holder_error: str | None = None,
    status: int = 200,
):
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    return render(
        "inet/orders/form.html",
        form=form,
        order=order,
        holders=card_orders.holders_for_order(organisation_id),
        chosen=chosen or {},
        holder_error=holder_error,
        refusal=inet_registrations.ordering_refusal(organisation_id, clock.today()),
        designs=[
            (d, card_orders.DESIGN_NAMES[d], card_orders.DESIGN_DESCRIPTIONS[d])
            for d in card_orders.DESIGN_NAMES
        ],
        max_quantity=card_orders.MAX_QUANTITY,
    ), status


def _save(actor: Actor, form: OrderForm, order: CardOrder | None):
    """Create or change a draft from the form; 422 with the message where it belongs."""
    lines, holder_error = order_lines(request.form)
    chosen = {line.holder_id: line.quantity for line in lines}
    valid = form.validate_on_submit()
    if not valid or holder_error:
        return _form_page(
            actor, form, order=order, chosen=chosen, holder_error=holder_error, status=422
        )
    try:
        if order is None:
            order = card_orders.create_draft(actor, form.details(lines), ip=client_ip())
        else:
            card_orders.update_draft(actor, order, form.details(lines), ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except card_orders.OrderConflict as exc:
        db.session.rollback()
        assert order is not None
        return _refused(order, str(exc))
    except PortalError as exc:
        db.session.rollback()
        if exc.field == "holders":
            holder_error = str(exc)
        else:
            show_error(form, exc)
        status = 409 if order is None and exc.field is None else 422
        return _form_page(
            actor, form, order=order, chosen=chosen, holder_error=holder_error, status=status
        )
    flash(_("The draft was saved. Check it and send the order."), "success")
    return _to_order(order)


@bp.route("/orders/new", methods=["GET", "POST"])
@login_required
def new_order():
    actor = _inet_actor()
    _placer(actor)
    if request.method == "POST":
        return _save(actor, OrderForm(), None)
    form = OrderForm(formdata=None)
    organisation = actor.organisation
    assert organisation is not None
    delivery = card_orders.default_delivery(organisation)
    form.design.data = "standard"
    form.delivery_name.data = delivery.name
    form.delivery_postal_code.data = delivery.postal_code
    form.delivery_address.data = delivery.address
    form.delivery_phone.data = delivery.phone
    return _form_page(actor, form)


@bp.route("/orders/<int:order_id>/edit", methods=["GET", "POST"])
@login_required
def edit_order(order_id: int):
    actor = _inet_actor()
    order = get_card_order_or_404(order_id, actor)
    _placer(actor)
    if order.state != OrderState.DRAFT:
        return _refused(
            order,
            _(
                "This order was sent on %(when)s: it can no longer be changed.",
                when=tokyo_minute(order.submitted_at or card_orders.stamp(order)),
            ),
        )
    if request.method == "POST":
        return _save(actor, OrderForm(), order)
    form = OrderForm(formdata=None, obj=order)
    form.design.data = order.design.value
    chosen = {item.holder_id: item.quantity for item in order.items if item.holder_id}
    return _form_page(actor, form, order=order, chosen=chosen)


@bp.get("/orders/<int:order_id>")
@login_required
def order(order_id: int):
    actor = _inet_actor()
    found = get_card_order_or_404(order_id, actor)
    return _order_page(actor, found)


def _order_page(actor: Actor, found: CardOrder, status: int = 200):
    # names for the organisation's administrators and the agent who placed the order
    # (the loader shows agents only their own); photos for administrators only.
    names = can_manage_card_holders(actor) or is_agent(actor)
    photos = can_see_card_photos(actor) and HOLDER_PHOTO_ENDPOINT in current_app.view_functions
    may_cancel = can_cancel_card_orders(actor) and card_orders.may_take(
        actor, found, OrderAction.CANCEL
    )
    withdraw_action = (
        OrderAction.DISCARD if found.state == OrderState.DRAFT else OrderAction.WITHDRAW
    )
    return render(
        "inet/orders/order.html",
        order=found,
        progress=card_orders.progress(found),
        events=card_orders.events_of(found),
        names=names,
        photo_url=_holder_photo_url if photos else None,
        may_cancel=may_cancel,
        may_withdraw=card_orders.may_take(actor, found, withdraw_action),
        may_send=card_orders.may_take(actor, found, OrderAction.SUBMIT),
        submission_refusal=(
            card_orders.submission_refusal(found) if found.state == OrderState.DRAFT else None
        ),
        cancel_refusal=why_not_cancellable(found.state),
        CancelRefusal=CancelRefusal,
        cancels=can_cancel_card_orders(actor),
        submit_form=ConfirmForm(formdata=None),
    ), status


def _holder_photo_url(item: CardOrderItem) -> str | None:
    if item.holder is None or not item.holder.photo_key:
        return None
    return url_for(HOLDER_PHOTO_ENDPOINT, holder_id=item.holder.id)


@bp.post("/orders/<int:order_id>/submit")
@login_required
def submit_order(order_id: int):
    """The draft's page is where it is checked; its button sends `confirmed=yes`."""
    actor = _inet_actor()
    found = get_card_order_or_404(order_id, actor)
    _placer(actor)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        card_orders.check(actor, found, OrderAction.SUBMIT)
        if form.confirmed.data != "yes":
            return _to_order(found)
        card_orders.submit(actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except card_orders.OrderConflict as exc:
        db.session.rollback()
        return _refused(found, str(exc))
    except PortalError as exc:
        # No photo for a holder, the registration ended: said on the draft's page.
        db.session.rollback()
        flash(str(exc), "error")
        return _order_page(actor, db.session.get(CardOrder, found.id) or found, 422)
    flash(_("Your order was sent. We will confirm it by e-mail."), "success")
    return _to_order(found)


def _confirmation(found: CardOrder, action: str, summary: list[str], label: str):
    return render_template(
        "_confirm.html",
        form=ConfirmForm(formdata=None),
        action=url_for(action, order_id=found.id),
        summary=summary,
        confirm_label=label,
    )


@bp.route("/orders/<int:order_id>/withdraw", methods=["GET", "POST"])
@login_required
def withdraw_order(order_id: int):
    """Take back a sent order before it is confirmed, or throw a draft away; asked first."""
    actor = _inet_actor()
    found = get_card_order_or_404(order_id, actor)
    _placer(actor)
    draft = found.state == OrderState.DRAFT
    action = OrderAction.DISCARD if draft else OrderAction.WITHDRAW
    form = ConfirmForm()
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    if request.method == "POST" and form.confirmed.data == "edit":
        return _to_order(found)
    try:
        card_orders.check(actor, found, action)
        if request.method == "POST" and form.confirmed.data == "yes":
            card_orders.withdraw(actor, found, ip=client_ip())
            db.session.commit()
            flash(
                _("The draft was discarded.")
                if draft
                else _("The order was withdrawn. No cards will be made for it."),
                "success",
            )
            return _to_order(found)
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        return _refused(found, str(exc))
    if draft:
        summary = [
            _("Discard the draft %(number)s.", number=found.number),
            _("Nothing was sent: the provider is not told. This cannot be undone."),
        ]
        return _confirmation(found, "inet.withdraw_order", summary, _("Discard the draft"))
    summary = [
        _("Withdraw order %(number)s.", number=found.number),
        _(
            "It has not been confirmed yet, so no contract was formed: no cards will be made "
            "for it. This cannot be undone; to order the same cards, place a new order."
        ),
        _("Your organisation is told by e-mail."),
    ]
    return _confirmation(found, "inet.withdraw_order", summary, _("Withdraw the order"))


@bp.route("/orders/<int:order_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel_order(order_id: int):
    """R-82: the customer's administrators cancel a confirmed order until it is accepted,
    after a confirmation page (no JavaScript needed). If the acceptance got there first, the
    answer says so (409) and nothing changes."""
    actor = _inet_actor()
    found = get_card_order_or_404(order_id, actor)
    if not can_cancel_card_orders(actor):
        abort(403, _("Only your organisation's administrators can cancel an order."))
    form = ConfirmForm()
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    if request.method == "POST" and form.confirmed.data == "edit":
        return _to_order(found)
    try:
        card_orders.check(actor, found, OrderAction.CANCEL)
        if request.method == "POST" and form.confirmed.data == "yes":
            card_orders.cancel(actor, found, ip=client_ip())
            db.session.commit()
            flash(_("The order was cancelled. No cards will be made for it."), "success")
            return _to_order(found)
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        return _refused(found, str(exc))
    summary = [
        ngettext(
            "Cancel order %(number)s (%(num)d card).",
            "Cancel order %(number)s (%(num)d cards).",
            found.card_count,
            number=found.number,
        ),
        _(
            "You can cancel it until we accept it; after the cancellation no cards are made and "
            "the order ends. This cannot be undone; to order the same cards, place a new order."
        ),
        _("Your organisation is told by e-mail."),
    ]
    return _confirmation(found, "inet.cancel_order", summary, _("Cancel the order"))
