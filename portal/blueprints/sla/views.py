"""System information and SLA claims in the customer's portal (R-50..R-53), and the secret
feeds of incidents (Atom) and maintenance (iCalendar)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.sla.forms import FileClaimForm, RotateFeedsForm
from portal.clock import clock
from portal.extensions import db
from portal.models import Contract, Incident, Organisation
from portal.permissions import (
    Actor,
    can_file_claims,
    can_rotate_feeds,
    can_see_claims,
    can_see_feed_addresses,
    can_see_system_information,
    get_claim_or_404,
    get_contract_or_404,
    get_incident_or_404,
)
from portal.services import claims as claim_service
from portal.services import feeds
from portal.services import incidents as incident_service
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import client_ip, current_actor

bp = Blueprint("sla", __name__)


@bp.app_context_processor
def _helpers() -> dict[str, object]:
    return {
        "claims_explain": claim_service.explain,
        "claims_refusal": claim_service.refusal_message,
    }


def _portal_actor() -> Actor:
    actor = current_actor()
    if not can_see_system_information(actor):
        abort(404)
    return actor


# --- system information --------------------------------------------------------------------


@bp.get("/system")
@login_required
def system():
    """Incidents under way and maintenance ahead first, then the last 12 months."""
    actor = _portal_actor()
    now = clock.now()
    views = incident_service.for_organisation(actor.organisation_id, now)
    return render_template(
        "sla/system.html",
        current=[v for v in views if v.is_open],
        past=[v for v in views if not v.is_open],
        maintenance=incident_service.upcoming_maintenance(actor.organisation_id, now),
        feeds=feeds.addresses(actor.organisation_id) if can_see_feed_addresses(actor) else None,
        may_rotate=can_rotate_feeds(actor),
    )


@bp.get("/system/incidents/<int:incident_id>")
@login_required
def incident(incident_id: int):
    actor = _portal_actor()
    view = incident_service.view_for_organisation(
        get_incident_or_404(incident_id), actor.organisation_id
    )
    if view is None:
        abort(404)  # it did not touch this organisation: as if it did not exist
    return render_template("sla/incident.html", view=view, may_see_claims=can_see_claims(actor))


@bp.route("/system/feeds/rotate", methods=["GET", "POST"])
@login_required
def rotate_feeds():
    """A new secret address for the feeds: asked once more, since it ends every
    subscription."""
    actor = _portal_actor()
    if not can_rotate_feeds(actor):
        abort(403, _("Only the customer's administrators change the feed addresses."))
    form = RotateFeedsForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("sla/rotate.html", form=form)
    feeds.rotate(actor, actor.organisation, ip=client_ip())
    db.session.commit()
    flash(_("The feeds have new addresses. Subscribe again with the addresses below."), "success")
    return redirect(url_for("sla.system"))


def _feed_organisation(organisation_id: int, feed_token: str) -> Organisation:
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None or not feeds.verify(organisation_id, feed_token):
        abort(404)
    return organisation


@bp.get("/feeds/<int:organisation_id>/<feed_token>/incidents.atom")
def incident_feed(organisation_id: int, feed_token: str):
    """The organisation's incidents for feed readers: the secret address is the key."""
    organisation = _feed_organisation(organisation_id, feed_token)
    return Response(
        feeds.incident_feed(organisation),
        mimetype="application/atom+xml",
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )


@bp.get("/feeds/<int:organisation_id>/<feed_token>/maintenance.ics")
def maintenance_feed(organisation_id: int, feed_token: str):
    """The maintenance windows for calendars: the secret address is the key."""
    organisation = _feed_organisation(organisation_id, feed_token)
    return Response(
        feeds.maintenance_calendar(organisation),
        mimetype="text/calendar",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": 'inline; filename="maintenance.ics"',
            "X-Robots-Tag": "noindex",
        },
    )


# --- claims (R-52) -------------------------------------------------------------------------


def _claims_actor() -> Actor:
    actor = _portal_actor()
    if not can_see_claims(actor):
        abort(403, _("Compensation claims are shown to the customer and its sales agents."))
    return actor


@bp.get("/contracts/<int:contract_id>/claims")
@login_required
def claims(contract_id: int):
    """The incidents that touched the contract, what each is worth and why, and its claims."""
    actor = _claims_actor()
    contract = get_contract_or_404(contract_id, actor)
    return _claims_page(actor, contract)


def _claims_page(
    actor: Actor,
    contract: Contract,
    status: int = 200,
    error: str = "",
    incident_id: int | None = None,
):
    """The claims page; a refused claim's message stands in the card of its incident (or at
    the top when the incident is not on the page)."""
    options = claim_service.options_for(contract, clock.now(), clock.today())
    in_card = any(o.incident.id == incident_id for o in options)
    return render_template(
        "sla/claims.html",
        contract=contract,
        options=options,
        claims=claim_service.claims_of(contract),
        may_file=can_file_claims(actor),
        error=error if not in_card else "",
        card_error=error if in_card else "",
        error_incident_id=incident_id,
    ), status


@bp.get("/contracts/<int:contract_id>/claims/new/<int:incident_id>")
@login_required
def new_claim(contract_id: int, incident_id: int):
    """The claim before it is filed: the computation, line by line, and one button."""
    actor = _claims_actor()
    contract = get_contract_or_404(contract_id, actor)
    option = _option(contract, incident_id)
    if option is None:
        abort(404)
    return render_template(
        "sla/new_claim.html",
        contract=contract,
        option=option,
        form=FileClaimForm(formdata=None, incident_id=option.incident.id),
        may_file=can_file_claims(actor),
    )


def _option(contract: Contract, incident_id: int | None) -> claim_service.Option | None:
    if incident_id is None:
        return None
    return next(
        (
            o
            for o in claim_service.options_for(contract, clock.now(), clock.today())
            if o.incident.id == incident_id
        ),
        None,
    )


@bp.post("/contracts/<int:contract_id>/claims")
@login_required
def file_claim(contract_id: int):
    """File the claim: the amount is computed again now, never taken from the form."""
    actor = _claims_actor()
    contract = get_contract_or_404(contract_id, actor)
    if not can_file_claims(actor):
        abort(403, _("Only the customer's administrators and sales agents file claims."))
    form = FileClaimForm()
    if not form.validate_on_submit():
        return _claims_page(actor, contract, 422, _("Choose an incident to claim for."))
    incident = (
        db.session.get(Incident, form.incident_id.data)
        if _valid_id(form.incident_id.data)
        else None
    )
    if incident is None:
        return _claims_page(actor, contract, 422, _("Choose an incident to claim for."))
    try:
        created = claim_service.file(actor, contract, incident, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _claims_page(actor, contract, 409, str(exc), incident.id)
    except PortalError as exc:
        db.session.rollback()
        return _claims_page(actor, contract, 422, str(exc), incident.id)
    flash(_("Your claim was filed. We will review it and tell you the result."), "success")
    return redirect(url_for("sla.claim", contract_id=contract.id, claim_id=created.id))


def _valid_id(value: int | None) -> bool:
    return value is not None and 0 < value <= 2_147_483_647


@bp.get("/contracts/<int:contract_id>/claims/<int:claim_id>")
@login_required
def claim(contract_id: int, claim_id: int):
    actor = _claims_actor()
    contract = get_contract_or_404(contract_id, actor)
    found = get_claim_or_404(contract, claim_id)
    return render_template(
        "sla/claim.html",
        contract=contract,
        claim=found,
        reasoning=claim_service.explain(claim_service.Computation.of_claim(found)),
        invoices=claim_service.invoices_of(found),
        staff_view=False,
    )


@bp.get("/contracts/<int:contract_id>/claims/<int:claim_id>/document.pdf")
@login_required
def claim_pdf(contract_id: int, claim_id: int):
    """The claim as filed, byte for byte as stored."""
    actor = _claims_actor()
    found = get_claim_or_404(get_contract_or_404(contract_id, actor), claim_id)
    return pdf_response(found)


def pdf_response(found) -> Response:
    content = claim_service.pdf_of(found)
    return Response(
        content,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{found.number}.pdf"',
            "X-Content-SHA256": claim_service.stored_sha256(found),
        },
    )
