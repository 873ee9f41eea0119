"""Home routing, the language switch, leaving a customer's portal, health check."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.blueprints.main.forms import LanguageForm, LeaveForm
from portal.extensions import db
from portal.models import EntryKind
from portal.permissions import can_use_customer_portal, is_agent, is_staff
from portal.services import entries
from portal.web import client_ip, current_actor, safe_next

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    actor = current_actor()
    if can_use_customer_portal(actor):
        return redirect(url_for("contracts.home"))
    if is_staff(actor):
        return redirect(url_for("staff.organisations"))
    if is_agent(actor):
        return redirect(url_for("partners.clients"))
    abort(404)


@bp.post("/language")
def language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.locale.data
        if current_user.is_authenticated and not current_actor().is_staff_view:
            current_user.locale = form.locale.data
            db.session.commit()
    return redirect(safe_next(form.next.data, url_for("main.index")))


@bp.post("/leave")
@login_required
def leave():
    """Stop viewing as the customer (staff) or stop acting for a client (agent)."""
    actor = current_actor()
    form = LeaveForm()
    if actor.entry is None or not form.validate_on_submit():
        return redirect(url_for("main.index"))
    entry = entries.stop(actor, reason="stopped", ip=client_ip())
    db.session.commit()
    if entry is not None and entry.kind == EntryKind.STAFF_VIEW:
        flash(_("You stopped viewing as the customer."), "info")
        return redirect(url_for("staff.organisation", organisation_id=entry.organisation_id))
    flash(_("You left the client's portal."), "info")
    return redirect(url_for("partners.clients"))


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.app_context_processor
def _forms():
    return {
        "language_form": LanguageForm(next=request.full_path.rstrip("?")),
        "leave_form": LeaveForm(),
    }
