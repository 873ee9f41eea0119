"""A customer's portal: contracts with their calendar, requests with quotes, access records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.contracts.forms import ConfirmRequestForm, WithdrawForm
from portal.clock import clock
from portal.domain import calendar, quotes
from portal.domain.quotes import Quote, Refusal, RequestKind
from portal.extensions import db, htmx
from portal.models import Contract, Plan
from portal.permissions import (
    Actor,
    can_request_changes,
    can_see_access_records,
    can_use_customer_portal,
    get_contract_or_404,
    get_request_or_404,
)
from portal.services import contracts as contract_service
from portal.services import documents as document_service
from portal.services import requests as request_service
from portal.services import usage as usage_service
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.services.requests import Choice, RequestRefused
from portal.web import client_ip, current_actor

bp = Blueprint("contracts", __name__)


def _customer_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    return actor


@bp.get("/contracts")
@login_required
def home():
    actor = _customer_actor()
    today = clock.today()
    contracts = contract_service.contracts_of(actor)
    rows = contract_service.with_calendars(contracts, today)
    pending = request_service.pending_by_contract([c.id for c in contracts])
    return render_template(
        "contracts/home.html", rows=rows, organisation=actor.organisation, pending=pending
    )


@bp.get("/contracts/<int:contract_id>")
@login_required
def detail(contract_id: int):
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    return render_template("contracts/detail.html", **contract_page(contract))


def contract_page(contract: Contract) -> dict[str, object]:
    """What the contract page shows, for the customer's portal and the back office."""
    today = clock.today()
    return {
        "contract": contract,
        "cal": contract.calendar(today),
        "history": contract_service.history(contract, today),
        "requests": request_service.requests_of(contract),
        "pending": request_service.pending_request(contract),
        "kinds": request_service.kinds_for(contract) if contract.status == "active" else [],
        "usage": usage_service.view(contract),
        "withdraw_form": WithdrawForm(),
    }


# --- requests: choose, see the quote, confirm (R-20..R-32) --------------------------------


@dataclass(frozen=True)
class Purpose:
    """One request page: which kinds it offers and its title."""

    name: str
    kinds: tuple[RequestKind, ...]


PURPOSES = {
    "change": Purpose("change", (RequestKind.UPGRADE, RequestKind.DOWNGRADE)),
    "end": Purpose("end", (RequestKind.CANCELLATION, RequestKind.NON_RENEWAL)),
    "renew": Purpose("renew", (RequestKind.AGENCY_RENEWAL,)),
}


@bp.get("/contracts/<int:contract_id>/change")
@login_required
def change(contract_id: int):
    """Change plan: up (R-21) or down (R-22), with the quote updating as the choice changes."""
    return _request_page(contract_id, PURPOSES["change"])


@bp.get("/contracts/<int:contract_id>/end")
@login_required
def end(contract_id: int):
    """End the contract: cancellation (R-30, R-31) or notice against renewal (R-05)."""
    return _request_page(contract_id, PURPOSES["end"])


@bp.get("/contracts/<int:contract_id>/renew")
@login_required
def renew(contract_id: int):
    """An agency contract's renewal application for its next 6-month period (R-06)."""
    return _request_page(contract_id, PURPOSES["renew"])


def _kind_for(purpose: Purpose, contract: Contract, plan: Plan | None, asked: str | None):
    offered = [k for k in purpose.kinds if k in request_service.kinds_for(contract)]
    if not offered:
        return None, offered
    if purpose.name == "change":
        target_fee = plan.monthly_fee if plan is not None else None
        return quotes.change_kind(contract.monthly_fee, target_fee), offered
    chosen = next((k for k in offered if k.value == asked), offered[0])
    return chosen, offered


def _request_page(contract_id: int, purpose: Purpose, *, status: int = 200, error: str = ""):
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    values = request.values
    plans = _plans_for(contract)
    plan = next((p for p in plans if str(p.id) == values.get("plan", "")), None)
    if purpose.name == "change" and plan is None and plans:
        plan = plans[0]
    kind, offered = _kind_for(purpose, contract, plan, values.get("kind"))
    if kind is None:
        abort(404)
    chosen_on = values.get("on") or None
    if kind in (RequestKind.DOWNGRADE, RequestKind.CANCELLATION) and not _is_month_end(
        chosen_on, contract
    ):
        # Month ends are offered in a list; a date left from an upgrade choice is not one.
        chosen_on = None
    parsed = request_service.parse_choice(
        kind.value, plan.id if plan and kind.changes_plan else None, chosen_on
    )
    result: Quote | Refusal = (
        parsed if isinstance(parsed, Refusal) else request_service.make_quote(contract, parsed)
    )
    confirm = None
    if isinstance(result, Quote):
        confirm = ConfirmRequestForm(
            formdata=None,
            kind=result.kind.value,
            plan=result.target_plan_id or "",
            on=result.effective_on.isoformat(),
            total=result.total,
        )
    context = {
        "contract": contract,
        "cal": contract.calendar(clock.today()),
        "purpose": purpose,
        "kind": kind,
        "offered": offered,
        "plans": plans,
        "plan": plan,
        "quote": result if isinstance(result, Quote) else None,
        "refusal": request_service.explain(result) if isinstance(result, Refusal) else "",
        "refusal_field": result.field if isinstance(result, Refusal) else None,
        "chosen_on": chosen_on or "",
        "target_plan": plan if kind.changes_plan else None,
        "confirm": confirm,
        "may_confirm": can_request_changes(actor),
        "error": error,
        "pending": request_service.pending_request(contract),
        "htmx_swap": bool(htmx),
    }
    template = "contracts/_request_panel.html" if htmx else "contracts/request_form.html"
    return render_template(template, **context), status


def _is_month_end(value: str | None, contract: Contract) -> bool:
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return False
    return calendar.is_month_end(day, contract.anchor_day)


def _plans_for(contract: Contract) -> list[Plan]:
    """Other plans of the contract's service on sale now (R-10)."""
    price_list = request_service.current_price_list(contract.service)
    if price_list is None:
        return []
    return [p for p in price_list.plans if p.sold and p.id != contract.plan_id]


@bp.post("/contracts/<int:contract_id>/requests")
@login_required
def confirm(contract_id: int):
    """Confirm the quote shown: the request is recorded as the written notice (R-20, R-32)."""
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    form = ConfirmRequestForm()
    kind = form.kind.data or ""
    purpose = next((p for p in PURPOSES.values() if kind in p.kinds), PURPOSES["change"])
    if not can_request_changes(actor):
        abort(403, _("You may see quotes but not make requests on this contract."))
    if not form.validate_on_submit():
        return _request_page(contract_id, purpose, status=400, error=_("Send the form again."))
    parsed = request_service.parse_choice(kind, form.plan.data, form.on.data)
    if isinstance(parsed, Refusal):
        return _request_page(
            contract_id, purpose, status=422, error=request_service.explain(parsed)
        )
    # what is confirmed is what was shown; a quote that changed meanwhile is shown again.
    current = request_service.make_quote(contract, parsed)
    if isinstance(current, Quote) and str(current.total) != (form.total.data or ""):
        return _request_page(
            contract_id,
            purpose,
            status=409,
            error=_("The quote has changed since it was shown. Check it and confirm again."),
        )
    try:
        created = request_service.submit(
            actor,
            contract,
            Choice(parsed.kind, parsed.plan_id, parsed.on),
            ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""),
        )
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except RequestRefused as exc:
        db.session.rollback()
        status = 409 if exc.refusal.code == "pending_request" else 422
        return _request_page(contract_id, purpose, status=status, error=str(exc))
    flash(_("Your request was recorded as your written notice."), "success")
    return redirect(
        url_for("contracts.request_detail", contract_id=contract.id, request_id=created.id)
    )


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>")
@login_required
def request_detail(contract_id: int, request_id: int):
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_request_or_404(contract, request_id)
    return render_template(
        "contracts/request.html",
        contract=contract,
        req=found,
        quote=found.confirmed_quote(),
        target_plan=found.target_plan,
        may_withdraw=can_request_changes(actor) and request_service.can_withdraw(found),
        withdraw_form=WithdrawForm(),
    )


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>/document.pdf")
@login_required
def request_pdf(contract_id: int, request_id: int):
    """The quote and confirmation of a request as PDF, in the reader's language."""
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_request_or_404(contract, request_id)
    locale = str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    with force_locale(locale):
        pdf = document_service.request_pdf(found, actor, locale)
    filename = f"{found.reference}-{locale}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/contracts/<int:contract_id>/requests/<int:request_id>/withdraw")
@login_required
def withdraw(contract_id: int, request_id: int):
    """R-23: withdraw a pending request before its effective date."""
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_request_or_404(contract, request_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        request_service.withdraw(actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(
            url_for("contracts.request_detail", contract_id=contract.id, request_id=found.id)
        ), 409
    except PortalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("contracts.detail", contract_id=contract.id))
    flash(_("The request was withdrawn. Nothing will be billed for it."), "success")
    return redirect(url_for("contracts.detail", contract_id=contract.id))


@bp.get("/access-records")
@login_required
def access_records():
    actor = _customer_actor()
    if not can_see_access_records(actor):
        abort(403)
    return render_template(
        "contracts/access_records.html",
        entries=contract_service.access_records(actor.organisation),
    )
