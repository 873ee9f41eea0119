"""A customer's portal: contracts with their calendar, and who entered the account."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import login_required

from portal.clock import clock
from portal.permissions import can_see_access_records, can_use_customer_portal, get_contract_or_404
from portal.services import contracts as contract_service
from portal.web import current_actor

bp = Blueprint("contracts", __name__)


def _customer_actor():
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
    return render_template("contracts/home.html", rows=rows, organisation=actor.organisation)


@bp.get("/contracts/<int:contract_id>")
@login_required
def detail(contract_id: int):
    actor = _customer_actor()
    contract = get_contract_or_404(contract_id, actor)
    today = clock.today()
    return render_template(
        "contracts/detail.html",
        contract=contract,
        cal=contract.calendar(today),
        history=contract_service.history(contract, today),
    )


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
