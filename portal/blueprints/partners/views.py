"""Agents of sales agents and agencies: their clients, and acting for one (R-71)."""

from __future__ import annotations

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
from sqlalchemy.exc import IntegrityError

from portal.blueprints.partners.forms import MAX_PURPOSE_LENGTH, EnterClientForm
from portal.clock import clock
from portal.extensions import db
from portal.permissions import get_client_or_404, is_agent
from portal.services import entries, home, worklist
from portal.services.errors import PortalError
from portal.web import client_ip, current_actor, current_session

bp = Blueprint("partners", __name__, url_prefix="/partner")


def _agent():
    actor = current_actor()
    if not is_agent(actor):
        abort(404)
    return actor


def _search() -> tuple[str, str]:
    """The search as typed (control characters dropped) and its error, if any (bounded)."""
    query = home.search_text(request.args.get("q"))
    if len(query) > home.MAX_SEARCH:
        return query, _("Use at most %(max)d characters.", max=home.MAX_SEARCH)
    return query, ""


def _worklist_page(actor, query: str, error: str):
    found = worklist.for_agent(actor, today=clock.today(), query="" if error else query)
    page = render_template(
        "partners/clients.html", worklist=found, q=query, error=error, form=EnterClientForm()
    )
    return page, 422 if error else 200


@bp.get("/clients")
@login_required
def clients():
    """R-71: the worklist across the agent's clients, the most urgent first."""
    actor = _agent()
    query, error = _search()
    return _worklist_page(actor, query, error)


@bp.get("/clients.csv")
@login_required
def clients_csv():
    """The worklist (the same search) as CSV for Excel, like the other CSV downloads; an
    agency's file has no amount (R-71)."""
    actor = _agent()
    query, error = _search()
    if error:
        return _worklist_page(actor, query, error)
    today = clock.today()
    found = worklist.for_agent(actor, today=today, query=query)
    filename = f"clients-{today:%Y%m%d}.csv"
    return Response(
        worklist.csv_text(found, str(get_locale())),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
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


# Applications for new clients (issue 14) have their own module; importing it adds its routes.
from portal.blueprints.partners import applications as _applications  # noqa: E402, F401

# The company's people (issue 14): its administrators' pages, in a module of their own.
from portal.blueprints.partners import people as _people  # noqa: E402, F401
