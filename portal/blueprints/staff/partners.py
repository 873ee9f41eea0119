"""Partner companies in the back office (R-71): the list, a new partner, its agents and
clients, assigning and withdrawing clients. Routes of the staff blueprint."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from portal.blueprints.partners.people import AgentInviteForm
from portal.blueprints.staff.views import bp
from portal.blueprints.validators import at_most, required, show_error
from portal.extensions import db
from portal.models import PartnerCompany, PartnerRole
from portal.permissions import can_manage_partners
from portal.presentation import partner_kind_name
from portal.services import partner_people
from portal.services import partners as partner_service
from portal.services.accounts import address_not_usable
from portal.services.errors import NotAllowed, PortalError
from portal.web import back_office_actor, client_ip, current_actor

_required = required()


class PartnerForm(FlaskForm):
    """A partner company (R-71): its name and whether it is a sales agent or an agency."""

    name = StringField(_l("Company name"), validators=[_required, at_most(200)])
    # The service refuses any other value with the same message (validate_choice=False).
    kind = SelectField(
        _l("Kind"),
        choices=[
            SelectChoice("sales_agent", _l("Sales agent")),
            SelectChoice("agency", _l("Agency")),
        ],
        validate_choice=False,
        validators=[required(_l("Choose sales agent or agency."))],
    )


class AssignClientForm(FlaskForm):
    # The service says why an organisation cannot be assigned (already a client, unknown).
    organisation_id = SelectField(
        _l("Organisation to assign"), coerce=int, validate_choice=False, validators=[_required]
    )


class WithdrawClientForm(FlaskForm):
    """Withdrawing a client is asked once more: "yes" withdraws, "edit" goes back."""

    confirmed = HiddenField()


@bp.get("/partners")
@login_required
def partners():
    actor = back_office_actor()
    return render_template(
        "staff/partners.html",
        rows=partner_service.listing(),
        may_manage=can_manage_partners(actor),
    )


@bp.route("/partners/new", methods=["GET", "POST"])
@login_required
def new_partner():
    actor = back_office_actor()
    if not can_manage_partners(actor):
        abort(403)
    form = PartnerForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("staff/partners_new.html", form=form), status
    try:
        partner = partner_service.create(
            actor, name=form.name.data, kind=form.kind.data, ip=client_ip()
        )
        db.session.commit()
    except NotAllowed:
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "name")
        return render_template("staff/partners_new.html", form=form), 422
    except IntegrityError:
        # The same name created twice at once: the unique index on the lowered name takes one.
        db.session.rollback()
        form.name.errors.append(_("A partner company with this name already exists."))
        return render_template("staff/partners_new.html", form=form), 422
    flash(_("%(partner)s was created.", partner=partner.name), "success")
    return redirect(url_for("staff.partner", partner_id=partner.id))


def _partner_or_404(partner_id: int) -> PartnerCompany:
    partner = db.session.get(PartnerCompany, partner_id)
    if partner is None:
        abort(404)
    return partner


def _partner_page(
    partner: PartnerCompany,
    form: AssignClientForm | None = None,
    status=200,
    *,
    invite_form: AgentInviteForm | None = None,
):
    actor = current_actor()
    form = form or AssignClientForm(formdata=None)
    candidates = partner_service.assignable(partner)
    form.organisation_id.choices = [
        SelectChoice(o.id, f"{o.legal_name} ({_('No.')} {o.id})") for o in candidates
    ]
    return render_template(
        "staff/partners_detail.html",
        partner=partner,
        kind=partner_kind_name(partner.kind),
        agents=partner_service.agents_of(partner),
        assignments=partner_service.assignments_of(partner),
        form=form,
        invite_form=invite_form or AgentInviteForm(formdata=None),
        may_manage=can_manage_partners(actor),
    ), status


@bp.get("/partners/<int:partner_id>")
@login_required
def partner(partner_id: int):
    back_office_actor()
    return _partner_page(_partner_or_404(partner_id))


@bp.post("/partners/<int:partner_id>/clients")
@login_required
def assign_client(partner_id: int):
    actor = back_office_actor()
    found = _partner_or_404(partner_id)
    if not can_manage_partners(actor):
        abort(403)
    form = AssignClientForm()
    form.organisation_id.choices = []  # checked by the service, with its own message
    if not form.validate_on_submit():
        return _partner_page(found, form, 422)
    try:
        # An id beyond the database's integer names no organisation (issue 13): 0 has none.
        chosen = form.organisation_id.data if 0 < form.organisation_id.data <= 2**31 - 1 else 0
        assignment = partner_service.assign(actor, found, chosen, ip=client_ip())
        client = assignment.organisation
        db.session.commit()
    except NotAllowed:
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "organisation_id")
        return _partner_page(found, form, 422)
    except IntegrityError:
        # The same assignment sent twice at once: the primary key lets only one through.
        db.session.rollback()
        form.organisation_id.errors.append(_("This organisation is already a client."))
        return _partner_page(found, form, 422)
    flash(
        _(
            "%(org)s is now a client of %(partner)s. Its administrators were told by e-mail.",
            org=client.legal_name,
            partner=found.name,
        ),
        "success",
    )
    return redirect(url_for("staff.partner", partner_id=found.id))


@bp.post("/partners/<int:partner_id>/agents")
@login_required
def invite_partner_agent(partner_id: int):
    """Issue 14: an agent or administrator of the partner (e.g. a new company's first
    administrator), who chooses their own password from the e-mailed link (R-63)."""
    actor = back_office_actor()
    found = _partner_or_404(partner_id)
    if not can_manage_partners(actor):
        abort(403)
    form = AgentInviteForm()
    if not form.validate_on_submit():
        return _partner_page(found, status=422, invite_form=form)
    try:
        user = partner_people.invite(
            actor,
            found,
            name=form.name.data,
            email=form.email.data,
            role=PartnerRole(form.role.data),
            locale=form.locale.data,
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed:
        db.session.rollback()
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "email")
        return _partner_page(found, status=422, invite_form=form)
    except IntegrityError:
        # The same address invited twice at once: the unique index on users.email takes one.
        db.session.rollback()
        form.email.errors.append(address_not_usable())
        return _partner_page(found, status=422, invite_form=form)
    flash(
        _(
            "%(email)s was invited to %(partner)s and will receive a link to choose a password.",
            email=user.email,
            partner=found.name,
        ),
        "success",
    )
    return redirect(url_for("staff.partner", partner_id=found.id))


@bp.post("/partners/<int:partner_id>/clients/<int:organisation_id>/withdraw")
@login_required
def withdraw_client(partner_id: int, organisation_id: int):
    """Asked once more first (the confirmation page), then withdrawn for good."""
    actor = back_office_actor()
    found = _partner_or_404(partner_id)
    assignment = partner_service.assignment_or_none(found, organisation_id)
    if assignment is None:
        abort(404)
    if not can_manage_partners(actor):
        abort(403)
    form = WithdrawClientForm()
    if not form.validate_on_submit():
        abort(400)
    if form.confirmed.data == "edit":
        return redirect(url_for("staff.partner", partner_id=found.id))
    client = assignment.organisation
    if form.confirmed.data != "yes":
        return _confirm_withdrawal(form, found, client)
    try:
        ended = partner_service.withdraw(actor, assignment, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.partner", partner_id=found.id))
    flash(
        _(
            "%(org)s is no longer a client of %(partner)s. Its administrators were told by e-mail.",
            org=client.legal_name,
            partner=found.name,
        ),
        "success",
    )
    if ended:
        flash(_("%(n)d agent(s) acting for it were let out.", n=ended), "info")
    return redirect(url_for("staff.partner", partner_id=found.id))


def _confirm_withdrawal(form: WithdrawClientForm, found: PartnerCompany, client):
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("staff.withdraw_client", partner_id=found.id, organisation_id=client.id),
        summary=[
            _(
                "Withdraw %(org)s from %(partner)s (%(kind)s).",
                org=client.legal_name,
                partner=found.name,
                kind=partner_kind_name(found.kind),
            ),
            _(
                "The partner's agents can no longer see or act for it; an agent acting for it "
                "now is let out at once."
            ),
            _("Its administrators are told by e-mail."),
            _("To undo this, assign the organisation to the partner again."),
        ],
        confirm_label=_("Withdraw"),
    )
