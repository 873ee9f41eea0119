"""A customer's portal: contracts with their calendar, requests with quotes, access records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.contracts.forms import ConfirmRequestForm, WithdrawForm
from portal.clock import clock
from portal.domain import calendar, quotes
from portal.domain.quotes import Quote, Refusal, RequestKind
from portal.extensions import db, htmx
from portal.models import Contract, ContractRequest, Plan, RequestStatus
from portal.paging import page_number
from portal.permissions import (
    Actor,
    can_request_changes,
    can_see_access_records,
    can_see_fees,
    can_use_customer_portal,
    get_contract_or_404,
    get_request_or_404,
)
from portal.presentation import long_date, yen
from portal.services import contracts as contract_service
from portal.services import documents as document_service
from portal.services import requests as request_service
from portal.services import usage as usage_service
from portal.services.documents import StoredDocument
from portal.services.errors import NotAllowed, PortalError
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
    contracts = contract_service.contracts_page(actor, page_number(request.args))
    rows = contract_service.with_calendars(contracts.items, today)
    # Read with the contracts (with_plan_and_service): no statement of its own.
    pending = {c.id: c.pending_request for c in contracts if c.pending_request is not None}
    return render_template(
        "contracts/home.html",
        contracts=contracts,
        rows=rows,
        organisation=actor.organisation,
        pending=pending,
        outlooks={c.id: contract_service.outlook(pending.get(c.id)) for c in contracts},
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
    requests = request_service.requests_of(contract)
    # at most one is pending; it is among the contract's requests (one statement).
    pending = next((r for r in requests if r.status == RequestStatus.PENDING), None)
    kinds = request_service.kinds_for(contract) if contract.status == "active" else []
    usage = usage_service.view(contract)
    return {
        "contract": contract,
        "cal": contract.calendar(today),
        "history": contract_service.history(contract, today),
        "requests": requests,
        "pending": pending,
        "outlook": contract_service.outlook(pending),
        "kinds": kinds,
        "usage": usage,
        "suggestion": _suggestion(contract, usage.suggested) if kinds and not pending else None,
    }


@dataclass(frozen=True)
class Suggestion:
    """R-15: whether the change to the plan that fits can be asked for now, and if it cannot
    because the contract ends first (quotes.DEAD_ENDS), its last day: the page never links to
    a form that can only say no."""

    possible: bool
    closed_by: date | None = None


def _suggestion(contract: Contract, plan: Plan | None) -> Suggestion | None:
    if plan is None:
        return None
    kind = quotes.change_kind(contract.monthly_fee, plan.monthly_fee)
    result = request_service.make_quote(contract, Choice(kind, plan.id))
    if isinstance(result, Quote):
        return Suggestion(True)
    dead_end = result.code in quotes.DEAD_ENDS
    return Suggestion(False, result.params["last_day"] if dead_end else None)


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


def _likely_upgrade(contract: Contract, plans: list[Plan]) -> Plan | None:
    """R-21/R-15: the plan the change page starts from (never a downgrade)."""
    reading = usage_service.latest(contract)
    found = quotes.likely_upgrade(
        contract.monthly_fee,
        contract.plan.capacity_gb,
        tuple(request_service.plan_terms(p) for p in plans),
        float(reading.used_gb) if reading is not None else None,
    )
    return next((p for p in plans if found is not None and p.id == found.id), None)


def _request_page(contract_id: int, purpose: Purpose, *, status: int = 200, error: str = ""):
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    values = request.values
    plans = _plans_for(contract)
    plan = next((p for p in plans if str(p.id) == values.get("plan", "")), None)
    if purpose.name == "change" and "plan" not in values:
        plan = _likely_upgrade(contract, plans)  # nothing chosen yet
    # The placeholder "Choose a plan" chosen: no quote, and no refusal either.
    nothing_chosen = purpose.name == "change" and plan is None and not values.get("plan")
    kind, offered = _kind_for(purpose, contract, plan, values.get("kind"))
    if kind is None:
        abort(404)
    chosen_on = values.get("on") or None
    if values.get("on_kind") not in (None, kind.value):
        # A date chosen for another kind is not carried over: each kind starts from its own
        # earliest date (R-20 for an upgrade, R-22/R-30 for a month end).
        chosen_on = None
    if kind in (RequestKind.DOWNGRADE, RequestKind.CANCELLATION) and not _is_month_end(
        chosen_on, contract
    ):
        # Month ends are offered in a list; a date left from an upgrade choice is not one.
        chosen_on = None
    result: Quote | Refusal | None = None
    if not nothing_chosen:
        parsed = request_service.parse_choice(
            kind.value, plan.id if plan and kind.changes_plan else None, chosen_on
        )
        result = (
            parsed if isinstance(parsed, Refusal) else request_service.make_quote(contract, parsed)
        )
    quote = result if isinstance(result, Quote) else None
    refusal = result if isinstance(result, Refusal) else None
    confirm = None
    if quote is not None:
        confirm = ConfirmRequestForm(
            formdata=None,
            kind=quote.kind.value,
            plan=quote.target_plan_id or "",
            on=quote.effective_on.isoformat(),
            quote=request_service.quote_fingerprint(quote),
        )
    context = {
        "contract": contract,
        "cal": contract.calendar(clock.today()),
        "purpose": purpose,
        "kind": kind,
        "offered": offered,
        "plans": plans,
        "plan": plan,
        "quote": quote,
        "refusal": request_service.explain(refusal) if refusal else "",
        "refusal_field": refusal.field if refusal else None,
        "dead_end": refusal is not None and refusal.code in quotes.DEAD_ENDS,
        "renewal_offered": RequestKind.AGENCY_RENEWAL in request_service.kinds_for(contract),
        "termination_options": _termination_options(quote),
        "cheaper": _cheaper_end(contract, quote),
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


def _termination_options(quote: Quote | None) -> list[date]:
    """The month ends offered, with the one quoted among them even when it is further out."""
    if quote is None:
        return []
    return sorted({*quote.termination_choices, quote.effective_on})


def _cheaper_end(contract: Contract, quote: Quote | None) -> quotes.CheaperEnd | None:
    """R-22/R-31: a later month end that owes no shortfall, to point out next to the quote."""
    if quote is None or quote.kind not in (RequestKind.DOWNGRADE, RequestKind.CANCELLATION):
        return None
    state = request_service.state_of(contract, has_pending=False)
    return quotes.cheaper_end(state, quote.notice_on, quote.effective_on)


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
    if isinstance(current, Quote) and not request_service.same_quote(current, form.quote.data):
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
    )


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>/document.pdf")
@login_required
def request_pdf(contract_id: int, request_id: int):
    """The confirmation of a request, byte for byte as stored when it was confirmed (R-32)."""
    actor = _customer_actor()
    found = get_request_or_404(get_contract_or_404(contract_id, actor), request_id)
    document = document_service.confirmation_of(found, actor)
    db.session.commit()  # stored now if it never was (a request from before documents)
    return _pdf_response(found, document)


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>/withdrawal.pdf")
@login_required
def withdrawal_pdf(contract_id: int, request_id: int):
    """The withdrawal of a request, byte for byte as stored when it was withdrawn (R-23)."""
    actor = _customer_actor()
    found = get_request_or_404(get_contract_or_404(contract_id, actor), request_id)
    document = document_service.withdrawal_of(found)
    if document is None:
        abort(404)
    db.session.commit()
    return _pdf_response(found, document)


def _pdf_response(found: ContractRequest, document: StoredDocument) -> Response:
    filename = f"{found.reference}-{document.kind}-{document.locale}.pdf"
    return Response(
        document.pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-SHA256": document.sha256,
        },
    )


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>/withdraw")
@login_required
def withdraw_confirm(contract_id: int, request_id: int):
    """What withdrawing does, asked once more before it is done (R-23); no JavaScript needed."""
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_request_or_404(contract, request_id)
    if not can_request_changes(actor):
        abort(403, _("You may not withdraw requests on this contract."))
    if not request_service.can_withdraw(found):
        flash(_("This request can no longer be withdrawn."), "error")
        return _to_request(found)
    return render_template(
        "_confirm.html",
        form=WithdrawForm(formdata=None),
        action=url_for("contracts.withdraw", contract_id=contract.id, request_id=found.id),
        summary=_withdrawal_summary(actor, contract, found),
        confirm_label=_("Withdraw the request"),
    )


def _withdrawal_summary(actor: Actor, contract: Contract, found: ContractRequest) -> list[str]:
    """What withdrawing this request does, for the confirmation page (R-05, R-06, R-23)."""
    quote = found.confirmed_quote()
    cal = contract.calendar(clock.today())
    on = long_date(found.effective_on)
    plan = found.target_plan.name(str(get_locale())) if found.target_plan else ""
    kind = request_service.REQUEST_KIND_NAMES[found.kind]
    lines = [_("Withdraw request %(ref)s (%(kind)s).", ref=found.reference, kind=kind)]
    if found.kind == RequestKind.UPGRADE:
        lines.append(_("The plan will not change to %(plan)s on %(date)s.", plan=plan, date=on))
    elif found.kind == RequestKind.DOWNGRADE:
        lines.append(
            _(
                "The contract will not end on %(date)s, and no new contract on %(plan)s will "
                "start: it continues on its current plan.",
                date=on,
                plan=plan,
            )
        )
    elif found.kind == RequestKind.AGENCY_RENEWAL:
        period = quote.next_period
        lines.append(
            _(
                "The next period (%(start)s – %(end)s) is no longer applied for.",
                start=long_date(period.start if period else found.effective_on),
                end=long_date(period.end if period else None),
            )
        )
    else:
        lines.append(_("The contract will not end on %(date)s.", date=on))
    # What the calendar says will happen instead, once nothing is pending.
    if cal.agency_renewal_due:
        lines.append(
            _(
                "Without a renewal application, the contract ends on %(date)s.",
                date=long_date(cal.agency_renewal_due),
            )
        )
    elif cal.next_renewal_start and found.kind != RequestKind.UPGRADE:
        if cal.days_to_notice_deadline is not None and cal.days_to_notice_deadline < 0:
            lines.append(
                _(
                    "It renews on %(date)s for 12 more billing months: the last day to give "
                    "notice against that renewal (%(deadline)s) has passed, so from then on only "
                    "a cancellation can end it sooner.",
                    date=long_date(cal.next_renewal_start),
                    deadline=long_date(cal.renewal_notice_deadline),
                )
            )
        else:
            lines.append(
                _(
                    "It renews on %(date)s for 12 more billing months unless notice is given "
                    "by %(deadline)s.",
                    date=long_date(cal.next_renewal_start),
                    deadline=long_date(cal.renewal_notice_deadline),
                )
            )
    if quote.total and can_see_fees(actor):
        lines.append(
            _("The %(total)s quoted (tax included) will not be billed.", total=yen(quote.total))
        )
    else:
        lines.append(_("Nothing is billed for a withdrawn request."))
    lines.append(
        _(
            "Withdrawing cannot be undone. To ask for the same again, make a new request: it is "
            "dated the day it is made, so its earliest date may be later than this one's."
        )
    )
    lines.append(
        _(
            "Your organisation's contract contacts are told by e-mail, and the confirmation of "
            "the withdrawal is kept with the request as a PDF."
        )
    )
    return lines


def _to_request(found: ContractRequest):
    return redirect(
        url_for("contracts.request_detail", contract_id=found.contract_id, request_id=found.id)
    )


@bp.post("/contracts/<int:contract_id>/requests/<int:request_id>/withdraw")
@login_required
def withdraw(contract_id: int, request_id: int):
    """R-23: withdraw a pending request before its effective date, once confirmed on the page
    above; then back to the contract (post/redirect/get)."""
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_request_or_404(contract, request_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        abort(400)
    if not can_request_changes(actor):
        abort(403, _("You may not withdraw requests on this contract."))
    if form.confirmed.data != "yes":
        # "Go back" on the confirmation page, or a form that was never confirmed: nothing done.
        return _to_request(found)
    try:
        request_service.withdraw(actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        # Withdrawn meanwhile, applied, or its effective date has come: say so, change nothing.
        db.session.rollback()
        flash(str(exc), "error")
        return _to_request(found)
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
