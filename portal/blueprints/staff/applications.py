"""Partners' applications for new clients in the back office (issue 14, R-71): the list, an
application, and approving or refusing it (each asked once more first). Every back-office role
looks; support staff (and staff administrators) decide. Routes of the staff blueprint."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from portal.blueprints.staff.views import bp
from portal.blueprints.validators import required, show_error
from portal.extensions import db
from portal.models import ApplicationStatus, PartnerApplication
from portal.permissions import can_decide_partner_applications, get_partner_application_or_404
from portal.presentation import long_date, partner_kind_name, yen
from portal.services import partner_applications as applications
from portal.services.errors import NotAllowed, PortalError
from portal.web import back_office_actor, client_ip, current_actor


class ApproveForm(FlaskForm):
    """Approving onboards the company and e-mails its administrator: asked once more."""

    confirmed = HiddenField()


class RefuseForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the agent who applied is told)"),
        validators=[
            required(_l("Give the reason.")),
            Length(
                min=applications.MIN_REASON_LENGTH,
                max=applications.MAX_REASON_LENGTH,
                message=_l(
                    "Give the reason in %(min)d to %(max)d characters.",
                    min=applications.MIN_REASON_LENGTH,
                    max=applications.MAX_REASON_LENGTH,
                ),
            ),
        ],
    )
    confirmed = HiddenField()


@bp.get("/applications")
@login_required
def partner_applications():
    back_office_actor()
    return render_template(
        "staff/applications.html",
        listing=applications.for_staff(),
        statuses=applications.STATUS_NAMES,
    )


def _application_page(
    application: PartnerApplication,
    *,
    refuse_form: RefuseForm | None = None,
    approval_error: str = "",
    status: int = 200,
):
    may_decide = can_decide_partner_applications(current_actor())
    pending = application.status == ApplicationStatus.PENDING
    return render_template(
        "staff/application.html",
        application=application,
        fees=applications.fees_of(application.plan),
        inet=applications.is_inet_plan(application.plan),
        statuses=applications.STATUS_NAMES,
        may_decide=may_decide and pending,
        approve_form=ApproveForm(formdata=None),
        refuse_form=refuse_form or RefuseForm(formdata=None),
        approval_error=approval_error,
    ), status


@bp.get("/applications/<int:application_id>")
@login_required
def partner_application(application_id: int):
    actor = back_office_actor()
    return _application_page(get_partner_application_or_404(application_id, actor))


def _decided(application: PartnerApplication):
    flash(_("This application was already decided."), "error")
    return redirect(url_for("staff.partner_application", application_id=application.id))


@bp.post("/applications/<int:application_id>/approve")
@login_required
def approve_application(application_id: int):
    """Asked once more first (what approving does), then onboarded (R-71, R-60)."""
    actor = back_office_actor()
    found = get_partner_application_or_404(application_id, actor)
    if not can_decide_partner_applications(actor):
        abort(403)
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    if form.confirmed.data == "edit":
        return redirect(url_for("staff.partner_application", application_id=found.id))
    if found.status != ApplicationStatus.PENDING:
        return _decided(found)
    try:
        if form.confirmed.data != "yes":
            checked = applications.check_approval(actor, found)
            return _confirm_approval(form, found, checked)
        approved = applications.approve(actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(403)
    except applications.AlreadyDecided:
        db.session.rollback()
        return _decided(found)
    except PortalError as exc:
        db.session.rollback()
        return _application_page(found, approval_error=str(exc), status=409)
    except IntegrityError:
        # The administrator's address was taken meanwhile (e.g. staff onboarded it at once).
        db.session.rollback()
        db.session.refresh(found)
        if found.status != ApplicationStatus.PENDING:
            return _decided(found)
        message = _("A user with this e-mail address already exists.")
        return _application_page(found, approval_error=message, status=409)
    onboarded = approved.onboarded
    flash(
        _(
            "%(org)s is onboarded as a client of %(partner)s.",
            org=onboarded.organisation.legal_name,
            partner=found.partner.name,
        ),
        "success",
    )
    flash(
        _(
            "An invitation was e-mailed to %(email)s; the administrator consents to the terms "
            "in the portal. The agent who applied was told.",
            email=onboarded.administrator.email,
        ),
        "info",
    )
    return redirect(url_for("staff.partner_application", application_id=found.id))


def _confirm_approval(form: ApproveForm, application: PartnerApplication, checked):
    locale = str(get_locale())
    plan = checked.plan
    organisation = (
        _(
            "Create the organisation %(org)s (%(kana)s).",
            org=application.legal_name,
            kana=checked.legal_name_kana,
        )
        if checked.legal_name_kana
        else _("Create the organisation %(org)s.", org=application.legal_name)
    )
    summary = [
        organisation,
        _(
            "Its first contract: %(service)s / %(plan)s at %(fee)s a month, from %(date)s.",
            service=plan.price_list.service.name(locale),
            plan=plan.name(locale),
            fee=yen(plan.monthly_fee),
            date=long_date(application.service_start),
        )
        if plan.price_list.service.paid
        else _(
            "Its first contract: %(service)s / %(plan)s (free of charge), from %(date)s.",
            service=plan.price_list.service.name(locale),
            plan=plan.name(locale),
            date=long_date(application.service_start),
        ),
        _(
            "It becomes a client of %(partner)s (%(kind)s), whose agents may then act for it.",
            partner=application.partner.name,
            kind=partner_kind_name(application.partner.kind),
        ),
        _(
            "%(name)s (%(email)s) becomes its first administrator and is invited by e-mail at "
            "once. Nobody consents to the terms for the organisation: the administrator does, "
            "in the portal.",
            name=application.admin_name,
            email=application.admin_email,
        ),
    ]
    if applications.is_inet_plan(plan):
        summary.append(
            _(
                "It is registered for I-NET SERVICE with the contacts of the application: "
                "%(contact)s and %(manager)s.",
                contact=application.inet_application_contact_name,
                manager=application.inet_operations_manager_name,
            )
        )
    summary += [
        _("%(agent)s, who applied, is told by e-mail.", agent=application.submitted_by.name),
        _(
            "This cannot be undone: the organisation and its contract are recorded and the "
            "invitation is sent."
        ),
    ]
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("staff.approve_application", application_id=application.id),
        summary=summary,
        confirm_label=_("Approve"),
    )


@bp.post("/applications/<int:application_id>/refuse")
@login_required
def refuse_application(application_id: int):
    """A reason is required; asked once more first, then refused and told to the agent."""
    actor = back_office_actor()
    found = get_partner_application_or_404(application_id, actor)
    if not can_decide_partner_applications(actor):
        abort(403)
    form = RefuseForm()
    if found.status != ApplicationStatus.PENDING:
        return _decided(found)
    if not form.validate_on_submit():
        return _application_page(found, refuse_form=form, status=422)
    if form.confirmed.data == "edit":
        return _application_page(found, refuse_form=form)
    try:
        if form.confirmed.data != "yes":
            reason = applications.clean_reason(form.reason.data)
            return _confirm_refusal(form, found, reason)
        applications.refuse(actor, found, form.reason.data, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(403)
    except applications.AlreadyDecided:
        db.session.rollback()
        return _decided(found)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "reason")
        return _application_page(found, refuse_form=form, status=422)
    flash(
        _(
            "The application for %(org)s was refused. %(agent)s was told by e-mail.",
            org=found.legal_name,
            agent=found.submitted_by.name,
        ),
        "success",
    )
    return redirect(url_for("staff.partner_application", application_id=found.id))


def _confirm_refusal(form: RefuseForm, application: PartnerApplication, reason: str):
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("staff.refuse_application", application_id=application.id),
        summary=[
            _(
                "Refuse the application of %(partner)s for %(org)s.",
                partner=application.partner.name,
                org=application.legal_name,
            ),
            _("Reason: %(reason)s", reason=reason),
            _(
                "%(agent)s, who applied, is told by e-mail with this reason; nothing is onboarded.",
                agent=application.submitted_by.name,
            ),
        ],
        confirm_label=_("Refuse"),
    )
