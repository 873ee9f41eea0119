"""Agents of sales agents and agencies: their clients, and acting for one (R-71)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.exc import IntegrityError

from portal.blueprints.partners.forms import MAX_PURPOSE_LENGTH, EnterClientForm
from portal.clock import clock
from portal.extensions import db
from portal.permissions import clients_of, get_client_or_404, is_agent
from portal.services import contracts as contract_service
from portal.services import entries
from portal.services.errors import PortalError
from portal.web import client_ip, current_actor, current_session

bp = Blueprint("partners", __name__, url_prefix="/partner")


def _agent():
    actor = current_actor()
    if not is_agent(actor):
        abort(404)
    return actor


@bp.get("/clients")
@login_required
def clients():
    actor = _agent()
    organisations = list(db.session.scalars(clients_of(actor)))
    contracts = contract_service.contracts_of_organisations([o.id for o in organisations])
    today = clock.today()
    by_org: dict[int, list] = {o.id: [] for o in organisations}
    for contract, cal in contract_service.with_calendars(contracts, today):
        by_org[contract.organisation_id].append((contract, cal))
    return render_template(
        "partners/clients.html",
        organisations=organisations,
        by_org=by_org,
        form=EnterClientForm(),
    )


@bp.post("/clients/<int:organisation_id>/enter")
@login_required
def enter(organisation_id: int):
    actor = _agent()
    get_client_or_404(organisation_id, actor)
    form = EnterClientForm()
    if not form.validate_on_submit():
        flash(_("Write the purpose in at most %(n)d characters.", n=MAX_PURPOSE_LENGTH), "error")
        return redirect(url_for("partners.clients"))
    try:
        entries.start_agent_entry(
            actor,
            organisation_id,
            purpose=form.purpose.data or "",
            user_session=current_session(),
            ip=client_ip(),
        )
        db.session.commit()
    except PortalError as exc:
        flash(str(exc), "error")
        return redirect(url_for("main.index"))
    except IntegrityError:
        # The same "enter" sent twice at once: one open entry per session (a unique index).
        db.session.rollback()
    return redirect(url_for("contracts.home"))
