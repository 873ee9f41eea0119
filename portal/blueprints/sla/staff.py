"""The back office of the SLA: incidents and their timeline, maintenance, claims received on
paper, and the review of claims (R-50..R-53)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from wtforms.fields.choices import SelectChoice

from portal.blueprints.sla.forms import (
    CorrectionForm,
    IncidentFactsForm,
    MaintenanceEndForm,
    MaintenanceForm,
    NewIncidentForm,
    PaperClaimForm,
    ReviewForm,
    UpdateForm,
)
from portal.blueprints.sla.views import pdf_response
from portal.blueprints.validators import show_error
from portal.clock import clock
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import (
    ClaimChannel,
    ClaimStatus,
    Incident,
    Plan,
    PriceList,
    Service,
    UpdateStatus,
)
from portal.paging import page_number
from portal.permissions import (
    Actor,
    can_manage_incidents,
    can_record_paper_claims,
    can_review_claims,
    get_claim_for_staff_or_404,
    get_contract_for_staff_or_404,
    get_incident_for_staff_or_404,
    get_maintenance_for_staff_or_404,
)
from portal.services import claims as claim_service
from portal.services import incidents as incident_service
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import back_office_actor, client_ip

bp = Blueprint("staff_sla", __name__, url_prefix="/staff")


def _manager(actor: Actor | None = None) -> Actor:
    """Support staff and staff administrators; call after loading what the URL names, so
    that an unknown id answers 404 to every back-office role alike."""
    actor = actor or back_office_actor()
    if not can_manage_incidents(actor):
        abort(403, _("Only support staff and staff administrators record incidents."))
    return actor


def _scope_choices(form: IncidentFactsForm | MaintenanceForm) -> None:
    locale = str(get_locale())
    services = list(db.session.scalars(db.select(Service).order_by(Service.id)))
    form.service_ids.choices = [SelectChoice(s.id, s.name(locale)) for s in services]
    if isinstance(form, IncidentFactsForm):
        plans = db.session.scalars(
            db.select(Plan)
            .join(PriceList, PriceList.id == Plan.price_list_id)
            .order_by(PriceList.service_id, Plan.monthly_fee, Plan.id)
        )
        form.plan_ids.choices = [SelectChoice(p.id, f"{p.name(locale)} ({p.code})") for p in plans]


def _facts(form: IncidentFactsForm) -> incident_service.IncidentFacts:
    return incident_service.IncidentFacts(
        kind=IncidentKind(form.kind.data),
        title_ja=form.title_ja.data or "",
        title_en=form.title_en.data or "",
        service_ids=tuple(form.service_ids.data or ()),
        plan_ids=tuple(form.plan_ids.data or ()),
        organisation_ids=tuple(form.organisation_ids.data or ()),
        started_at=form.started_at.data,
        ended_at=form.ended_at.data,
        occurrence_announced_at=form.occurrence_announced_at.data,
        recovery_announced_at=form.recovery_announced_at.data,
    )


def _confirmed(form) -> bool:
    """Actions that tell customers or cannot be undone are shown once more before they are
    done; the confirmation page sends the same form back with `confirmed` "yes" (do it) or
    "edit" (show the form again, as typed)."""
    return form.confirmed.data == "yes"


def _editing(form) -> bool:
    return form.confirmed.data == "edit"


# --- incidents -------------------------------------------------------------------------------


@bp.get("/incidents")
@login_required
def incidents():
    actor = back_office_actor()
    return render_template(
        "sla/staff_incidents.html",
        current=incident_service.ongoing_for_staff(),
        past=incident_service.ended_for_staff(page_number(request.args)),
        may_manage=can_manage_incidents(actor),
    )


@bp.route("/incidents/new", methods=["GET", "POST"])
@login_required
def new_incident():
    actor = _manager()
    form = NewIncidentForm()
    _scope_choices(form)
    if request.method == "GET":
        form.started_at.data = form.started_at.data or clock.now()
        return render_template("sla/staff_incident_form.html", form=form, incident=None)
    if not form.validate_on_submit():
        return render_template("sla/staff_incident_form.html", form=form, incident=None), 422
    facts = _facts(form)
    update = (
        incident_service.UpdateText(
            UpdateStatus(form.status.data), form.message_ja.data, form.message_en.data
        )
        if form.publish.data
        else None
    )
    if _editing(form):
        return render_template("sla/staff_incident_form.html", form=form, incident=None)
    try:
        if not _confirmed(form):
            incident_service.validate(facts, clock.now())
            return _confirm(
                form, "staff_sla.new_incident", {}, _new_incident_summary(facts, update)
            )
        created = incident_service.record(actor, facts, update=update, ip=client_ip())
        db.session.commit()
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "title_ja")
        return render_template("sla/staff_incident_form.html", form=form, incident=None), 422
    flash(_("The incident was recorded."), "success")
    return redirect(url_for("staff_sla.incident", incident_id=created.id))


def _new_incident_summary(facts, update) -> list[str]:
    title = facts.title_ja if str(get_locale()) == "ja" else facts.title_en
    lines = [_("Record the incident “%(title)s”.", title=title)]
    if update is not None:
        lines.append(
            _(
                "Publish the update and e-mail it to the operations contacts of every "
                "organisation it affected."
            )
        )
    return lines


def _confirm(form, endpoint: str, values: dict, summary: list[str]):
    """The confirmation page: what will happen, and the same form to send once more."""
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for(endpoint, **values),
        summary=summary,
    )


@bp.get("/incidents/<int:incident_id>")
@login_required
def incident(incident_id: int):
    actor = back_office_actor()
    found = get_incident_for_staff_or_404(incident_id, actor)
    return _incident_page(actor, found, UpdateForm(formdata=None))


def _incident_page(actor: Actor, found, update_form: UpdateForm, status: int = 200):
    version = incident_service.current_version(found)
    if version.ended_at is not None:
        # An incident that has ended takes only a resolved update (a final report).
        update_form.status.choices = [
            c for c in update_form.status.choices if c.value == UpdateStatus.RESOLVED.value
        ]
    return render_template(
        "sla/staff_incident.html",
        incident=found,
        version=version,
        versions=sorted(found.versions, key=lambda v: v.version, reverse=True),
        updates=sorted(found.updates, key=lambda u: (u.posted_at, u.id), reverse=True),
        affected=incident_service.affected_organisations(version),
        claims=claim_service.claims_of_incident(found),
        update_form=update_form,
        may_manage=can_manage_incidents(actor),
    ), status


@bp.post("/incidents/<int:incident_id>/updates")
@login_required
def post_update(incident_id: int):
    """Publish an update of the timeline; the affected organisations are told (R-61)."""
    actor = back_office_actor()
    found = get_incident_for_staff_or_404(incident_id, actor)
    _manager(actor)
    form = UpdateForm()
    if not form.validate_on_submit():
        return _incident_page(actor, found, form, 422)
    update = incident_service.UpdateText(
        UpdateStatus(form.status.data), form.message_ja.data, form.message_en.data
    )
    if _editing(form):
        return _incident_page(actor, found, form)
    if not _confirmed(form):
        count = len(
            incident_service.affected_organisations(incident_service.current_version(found))
        )
        return _confirm(
            form,
            "staff_sla.post_update",
            {"incident_id": found.id},
            [
                _(
                    "Publish this update of %(reference)s and e-mail it to the operations "
                    "contacts of %(count)d organisation(s).",
                    reference=found.reference,
                    count=count,
                )
            ],
        )
    try:
        incident_service.post_update(
            actor, found, update, ended_at=form.ended_at.data, ip=client_ip()
        )
        db.session.commit()
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _incident_page(actor, found, form, 409)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "message_ja")
        return _incident_page(actor, found, form, 422)
    flash(_("The update was published."), "success")
    return redirect(url_for("staff_sla.incident", incident_id=found.id))


@bp.route("/incidents/<int:incident_id>/correct", methods=["GET", "POST"])
@login_required
def correct_incident(incident_id: int):
    """A correction is a new version, with its reason; claims keep the version they rest on."""
    actor = back_office_actor()
    found = get_incident_for_staff_or_404(incident_id, actor)
    _manager(actor)
    version = incident_service.current_version(found)
    if request.method == "GET":
        form = CorrectionForm(formdata=None, obj=version)
        _scope_choices(form)
        form.kind.data = version.kind.value
        return render_template("sla/staff_incident_form.html", form=form, incident=found)
    form = CorrectionForm()
    _scope_choices(form)
    if not form.validate_on_submit():
        return render_template("sla/staff_incident_form.html", form=form, incident=found), 422
    facts = _facts(form)
    if _editing(form):
        return render_template("sla/staff_incident_form.html", form=form, incident=found)
    try:
        if not _confirmed(form):
            incident_service.validate(facts, clock.now())
            return _confirm(
                form,
                "staff_sla.correct_incident",
                {"incident_id": found.id},
                [
                    _(
                        "Write version %(version)d of %(reference)s. Claims filed on earlier "
                        "versions keep them.",
                        version=version.version + 1,
                        reference=found.reference,
                    )
                ],
            )
        incident_service.correct(actor, found, facts, reason=form.reason.data, ip=client_ip())
        db.session.commit()
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "reason")
        status = 409 if isinstance(exc, Conflict) else 422
        return render_template("sla/staff_incident_form.html", form=form, incident=found), status
    flash(_("The correction was recorded as a new version."), "success")
    return redirect(url_for("staff_sla.incident", incident_id=found.id))


# --- maintenance (R-50) ------------------------------------------------------------------------


@bp.get("/maintenance")
@login_required
def maintenance():
    actor = back_office_actor()
    now = clock.now()
    return render_template(
        "sla/staff_maintenance.html",
        extras=incident_service.maintenances_for_staff(),
        regular=[
            item
            for item in incident_service.maintenance_for(
                [s.id for s in db.session.scalars(db.select(Service))],
                now,
                now + timedelta(days=incident_service.UPCOMING_DAYS),
            )
            if item.regular
        ],
        may_manage=can_manage_incidents(actor),
    )


@bp.route("/maintenance/new", methods=["GET", "POST"])
@login_required
def new_maintenance():
    actor = _manager()
    form = MaintenanceForm()
    _scope_choices(form)
    if request.method == "GET":
        return render_template("sla/staff_maintenance_form.html", form=form)
    if not form.validate_on_submit():
        return render_template("sla/staff_maintenance_form.html", form=form), 422
    facts = incident_service.MaintenanceFacts(
        service_ids=tuple(form.service_ids.data or ()),
        title_ja=form.title_ja.data,
        title_en=form.title_en.data,
        planned_start=form.planned_start.data,
        planned_end=form.planned_end.data,
    )
    announce = form.mode.data != "unannounced"
    if _editing(form):
        return render_template("sla/staff_maintenance_form.html", form=form)
    try:
        if not _confirmed(form):
            summary = (
                _(
                    "Announce the maintenance and e-mail it to the operations contacts of every "
                    "organisation using these services."
                )
                if announce
                else _(
                    "Record maintenance carried out without announcement: all of it counts as "
                    "downtime, recorded as an incident."
                )
            )
            return _confirm(form, "staff_sla.new_maintenance", {}, [summary])
        if announce:
            created = incident_service.announce_maintenance(actor, facts, ip=client_ip())
        else:
            created = incident_service.record_unannounced_maintenance(actor, facts, ip=client_ip())
        db.session.commit()
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "title_ja")
        return render_template("sla/staff_maintenance_form.html", form=form), 422
    flash(_("The maintenance was recorded."), "success")
    return redirect(url_for("staff_sla.maintenance_detail", maintenance_id=created.id))


@bp.get("/maintenance/<int:maintenance_id>")
@login_required
def maintenance_detail(maintenance_id: int):
    actor = back_office_actor()
    found = get_maintenance_for_staff_or_404(maintenance_id, actor)
    return _maintenance_page(actor, found, MaintenanceEndForm(formdata=None))


def _maintenance_page(actor: Actor, found, form: MaintenanceEndForm, status: int = 200):
    return render_template(
        "sla/staff_maintenance_detail.html",
        maintenance=found,
        window=incident_service.maintenance_window(found),
        form=form,
        may_manage=can_manage_incidents(actor),
    ), status


@bp.post("/maintenance/<int:maintenance_id>/end")
@login_required
def end_maintenance(maintenance_id: int):
    """When the maintenance actually ended; past its announced end is downtime (R-50)."""
    actor = back_office_actor()
    found = get_maintenance_for_staff_or_404(maintenance_id, actor)
    _manager(actor)
    form = MaintenanceEndForm()
    if not form.validate_on_submit():
        return _maintenance_page(actor, found, form, 422)
    try:
        incident_service.complete_maintenance(actor, found, form.actual_end.data, ip=client_ip())
        db.session.commit()
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "actual_end")
        return _maintenance_page(actor, found, form, 409 if isinstance(exc, Conflict) else 422)
    flash(_("The end of the maintenance was recorded."), "success")
    return redirect(url_for("staff_sla.maintenance_detail", maintenance_id=found.id))


# --- claims (R-52, R-53) -----------------------------------------------------------------------


@bp.get("/claims")
@login_required
def claims():
    actor = back_office_actor()
    asked = request.args.get("status", "filed")
    status = ClaimStatus(asked) if asked in ClaimStatus._value2member_map_ else None
    return render_template(
        "sla/staff_claims.html",
        claims=claim_service.claims_for_staff(status, page=page_number(request.args)),
        status=status.value if status else "all",
        may_review=can_review_claims(actor),
    )


@bp.get("/claims/<int:claim_id>")
@login_required
def claim(claim_id: int):
    actor = back_office_actor()
    found = get_claim_for_staff_or_404(claim_id, actor)
    return _claim_page(actor, found, ReviewForm(formdata=None))


def _claim_page(actor: Actor, found, form: ReviewForm, status: int = 200):
    return render_template(
        "sla/claim.html",
        contract=found.contract,
        claim=found,
        reasoning=claim_service.explain(claim_service.Computation.of_claim(found)),
        invoices=claim_service.invoices_of(found),
        staff_view=True,
        review_form=form if can_review_claims(actor) and found.status == "filed" else None,
    ), status


@bp.post("/claims/<int:claim_id>/review")
@login_required
def review_claim(claim_id: int):
    """Approve as computed, approve less with a reason, or reject with a reason; once."""
    actor = back_office_actor()
    found = get_claim_for_staff_or_404(claim_id, actor)
    if not can_review_claims(actor):
        abort(403, _("Only billing staff and staff administrators review claims."))
    form = ReviewForm()
    if not form.validate_on_submit():
        return _claim_page(actor, found, form, 422)
    decision = claim_service.Decision(form.decision.data)
    if _editing(form):
        return _claim_page(actor, found, form)
    try:
        if not _confirmed(form):
            claim_service.check_review(
                found, decision, amount=form.amount.data, reason=form.reason.data
            )
            return _confirm(
                form,
                "staff_sla.review_claim",
                {"claim_id": found.id},
                [claim_service.review_summary(found, decision, form.amount.data)],
            )
        claim_service.review(
            actor,
            found,
            decision,
            amount=form.amount.data,
            reason=form.reason.data or "",
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "reason")
        return _claim_page(actor, found, form, 409 if isinstance(exc, Conflict) else 422)
    flash(_("The review was recorded and the customer told."), "success")
    return redirect(url_for("staff_sla.claim", claim_id=found.id))


@bp.get("/claims/<int:claim_id>/document.pdf")
@login_required
def claim_pdf(claim_id: int):
    actor = back_office_actor()
    return pdf_response(get_claim_for_staff_or_404(claim_id, actor))


@bp.route("/contracts/<int:contract_id>/claims/new", methods=["GET", "POST"])
@login_required
def paper_claim(contract_id: int):
    """Record a claim received by letter or telephone, with the day it was received."""
    actor = back_office_actor()
    contract = get_contract_for_staff_or_404(contract_id, actor)
    if not can_record_paper_claims(actor):
        abort(403, _("Only support staff and staff administrators record claims."))
    form = PaperClaimForm()
    options = claim_service.options_for(contract, clock.now(), clock.today())
    form.incident_id.choices = [
        SelectChoice(
            o.incident.id,
            f"{o.incident.reference} {o.version.title(str(get_locale()))}",
        )
        for o in options
        if o.claim is None
    ]
    if request.method == "GET":
        form.received_on.data = form.received_on.data or clock.today()
        return render_template(
            "sla/staff_paper_claim.html", form=form, contract=contract, options=options
        )
    if not form.validate_on_submit():
        return render_template(
            "sla/staff_paper_claim.html", form=form, contract=contract, options=options
        ), 422
    incident = db.session.get(Incident, form.incident_id.data)
    try:
        if incident is None:
            raise PortalError(_("Choose an incident."), field="incident_id")
        created = claim_service.file(
            actor,
            contract,
            incident,
            ip=client_ip(),
            channel=ClaimChannel.PAPER,
            received_on=form.received_on.data,
        )
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "incident_id")
        status = 409 if isinstance(exc, Conflict) else 422
        return render_template(
            "sla/staff_paper_claim.html", form=form, contract=contract, options=options
        ), status
    flash(_("The claim was recorded."), "success")
    return redirect(url_for("staff_sla.claim", claim_id=created.id))
