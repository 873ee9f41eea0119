"""I-NET SERVICE: the production back office (R-81, R-82, R-85).

Production staff only: other staff get 403 here, staff viewing as a customer 403 like every
back-office page (R-72), customers and agents 404. The queue shows orders by state; an
order's page shows its holders with their photos (R-85: production staff see them) and the
steps: confirm (注文確認連絡, the contract is formed, R-81), accept (注文受付連絡, the
cancel window closes, R-82), start production, ship, deliver, each asked once more first.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import login_required
from wtforms.fields.choices import SelectChoice

from portal.blueprints.inet import production_bp as bp
from portal.blueprints.inet.forms_orders import QueueForm, StepForm
from portal.blueprints.inet.orders import render
from portal.blueprints.validators import show_error
from portal.documents.proof_sheet import ProofSheet, card_sheet_cards, render_proof_sheet
from portal.domain.inet import OrderAction, OrderActor, OrderState, actions_for
from portal.extensions import db
from portal.models import CardOrder, CardOrderItem
from portal.permissions import Actor, can_work_card_orders, get_card_order_for_production_or_404
from portal.services import card_orders
from portal.services.errors import NotAllowed, PortalError
from portal.services.photo_storage import storage
from portal.web import back_office_actor, client_ip

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _production(actor: Actor) -> Actor:
    if not can_work_card_orders(actor):
        abort(403, _("Card orders are for production staff."))
    return actor


def _order(order_id: int) -> tuple[Actor, CardOrder]:
    """Load first, so that an unknown id answers 404 to every back-office role alike."""
    actor = back_office_actor()
    order = get_card_order_for_production_or_404(order_id, actor)
    if order.state == OrderState.DRAFT:
        abort(404)  # a draft is the customer's own until it is sent
    return _production(actor), order


@bp.get("/orders")
@login_required
def queue():
    _production(back_office_actor())
    form = QueueForm(request.args)
    form.state.choices = [SelectChoice("", _("Waiting on us"))] + [
        SelectChoice(s.value, card_orders.state_name(s))
        for s in OrderState
        if s != OrderState.DRAFT
    ]
    valid = form.validate()
    filters = card_orders.QueueFilter()
    if valid:
        filters = card_orders.QueueFilter(
            state=OrderState(form.state.data) if form.state.data else None,
            organisation=(form.organisation.data or "").strip(),
            submitted_from=form.submitted_from.data,
            submitted_to=form.submitted_to.data,
        )
    page = request.args.get("page", 1, type=int) or 1
    rows, has_next = card_orders.production_queue(filters, page)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render(
        "inet/production/queue.html",
        form=form,
        rows=rows if valid else [],
        counts=card_orders.counts_by_state(),
        waiting=card_orders.WAITING_STATES,
        page=max(1, page),
        has_next=has_next and valid,
        args=args if valid else {},
    ), (200 if valid else 422)


def _order_page(actor: Actor, order: CardOrder, form: StepForm | None = None, status: int = 200):
    available = actions_for(order.state, OrderActor.PRODUCTION)
    return render(
        "inet/production/order.html",
        order=order,
        progress=card_orders.progress(order),
        events=card_orders.events_of(order),
        available=available,
        form=form or StepForm(formdata=None),
        names=True,
        photo_url=lambda item: (
            url_for("production.photo", order_id=order.id, holder_id=item.holder_id)
            if item.holder is not None and item.holder.photo_key
            else None
        ),
    ), status


@bp.get("/orders/<int:order_id>")
@login_required
def order(order_id: int):
    actor, found = _order(order_id)
    return _order_page(actor, found)


def _item(order: CardOrder, holder_id: int) -> CardOrderItem:
    item = card_orders.item_of_holder(order, holder_id)
    if item is None or item.holder is None or not item.holder.photo_key:
        abort(404)
    return item


@bp.get("/orders/<int:order_id>/holders/<int:holder_id>/photo")
@login_required
def photo(order_id: int, holder_id: int):
    """A holder's photo, for production staff only (R-85), never cached."""
    _actor, found = _order(order_id)
    item = _item(found, holder_id)
    assert item.holder is not None and item.holder.photo_key
    content = storage().get(found.organisation_id, item.holder.photo_key)
    if content is None:
        abort(404)
    return Response(content, mimetype="image/jpeg", headers=_NO_STORE)


@bp.get("/orders/<int:order_id>/proof.pdf")
@login_required
def proof_sheet(order_id: int):
    """The proof sheet for the printer: made now, never stored (it holds the photos)."""
    _actor, found = _order(order_id)
    photos = storage()

    def photo_of(item: CardOrderItem) -> bytes | None:
        if item.holder is None or not item.holder.photo_key:
            return None
        return photos.get(found.organisation_id, item.holder.photo_key)

    pdf = render_proof_sheet(
        ProofSheet(
            order_number=found.number,
            organisation=found.organisation.legal_name,
            design=found.design,
            design_name=card_orders.design_name(found.design),
            cards=card_sheet_cards(found.items, photo_of),
            locale=str(get_locale()),
        )
    )
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={
            **_NO_STORE,
            "Content-Disposition": f'inline; filename="{found.number}-proof.pdf"',
        },
    )


def _summary(order: CardOrder, action: OrderAction, form: StepForm) -> list[str]:
    organisation = order.organisation.legal_name
    cards = order.card_count
    lines = {
        OrderAction.CONFIRM: [
            ngettext(
                "Confirm order %(number)s of %(org)s (%(num)d card).",
                "Confirm order %(number)s of %(org)s (%(num)d cards).",
                cards,
                number=order.number,
                org=organisation,
            ),
            _(
                "The order confirmation e-mail (注文確認連絡) is sent: the contract is formed, and "
                "the customer may cancel in the portal until you accept the order."
            ),
        ],
        OrderAction.ACCEPT: [
            ngettext(
                "Accept order %(number)s of %(org)s (%(num)d card).",
                "Accept order %(number)s of %(org)s (%(num)d cards).",
                cards,
                number=order.number,
                org=organisation,
            ),
            _(
                "The order acceptance e-mail (注文受付連絡) is sent: from then on the customer "
                "can no longer cancel the order."
            ),
        ],
        OrderAction.START_PRODUCTION: [
            _("Start production of order %(number)s.", number=order.number),
        ],
        OrderAction.SHIP: [
            _("Mark order %(number)s as shipped.", number=order.number),
            _(
                "Carrier: %(carrier)s; tracking number: %(tracking)s. The customer is told by "
                "e-mail.",
                carrier=form.carrier.data,
                tracking=form.tracking_number.data,
            ),
        ],
        OrderAction.DELIVER: [
            _("Mark order %(number)s as delivered.", number=order.number),
        ],
    }
    return [*lines[action], _("This cannot be undone.")]


@bp.post("/orders/<int:order_id>/step")
@login_required
def step(order_id: int):
    """One step of the order, asked once more first (the page works without JavaScript)."""
    actor, found = _order(order_id)
    form = StepForm()
    if not form.validate_on_submit():
        return _order_page(actor, found, form, 422)
    action = OrderAction(form.action.data)
    if form.confirmed.data == "edit":
        return _order_page(actor, found, form)
    try:
        if action == OrderAction.SHIP:
            carrier, tracking = card_orders.clean_shipment(
                form.carrier.data, form.tracking_number.data
            )
            form.carrier.data, form.tracking_number.data = carrier, tracking
        card_orders.check(actor, found, action)
        if form.confirmed.data != "yes":
            return render(
                "_confirm.html",
                form=form,
                action=url_for("production.step", order_id=found.id),
                summary=_summary(found, action, form),
                confirm_label=card_orders.action_name(action),
            )
        if action == OrderAction.SHIP:
            card_orders.ship(
                actor, found, form.carrier.data, form.tracking_number.data, ip=client_ip()
            )
        else:
            card_orders.PRODUCTION_STEPS[action](actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except card_orders.OrderConflict as exc:
        db.session.rollback()
        return render(
            "inet/orders/refused.html",
            message=str(exc),
            back=url_for("production.order", order_id=found.id),
            back_label=_("Back to order %(number)s", number=found.number),
        ), 409
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "tracking_number")
        return _order_page(actor, found, form, 422)
    flash(
        _(
            "Recorded: %(step)s, order %(number)s.",
            step=card_orders.action_name(action),
            number=found.number,
        ),
        "success",
    )
    return redirect(url_for("production.order", order_id=found.id))
