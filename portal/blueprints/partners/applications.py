"""Agents apply for new clients (issue 14, R-71): the partner company's applications, a new
one (asked once more before it is sent), its page, and withdrawing it before staff decide.
Routes of the partners blueprint: agents only, anyone else 404. An agency's pages show no
fee, no amount at all (R-71)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional

from portal.blueprints.partners.views import bp
from portal.blueprints.validators import LANGUAGE_CHOICES, at_most, email, required, show_error
from portal.clock import clock
from portal.extensions import db
from portal.models import ApplicationStatus, Plan
from portal.permissions import (
    Actor,
    can_apply_for_clients,
    can_see_fees,
    get_partner_application_or_404,
)
from portal.presentation import tokyo_minute, yen
from portal.services import organisations as organisation_service
from portal.services import partner_applications as applications
from portal.services.errors import NotAllowed, PortalError
from portal.services.information import FIELD_LABELS
from portal.web import client_ip, current_actor

_required = required()
_email = email()


def _plan_id(value: object) -> int | None:
    """The plan chosen, or None for anything that names no plan (the service then says so)."""
    try:
        return int(str(value))
    except ValueError:
        return None


class ApplicationForm(FlaskForm):
    """The customer's application (利用申込書) as the agent fills it in for the company:
    staff's onboarding form without the partner (the agent's own company) and the anchor day
    (the service's); for I-NET SERVICE also the registration's contacts (IN 16)."""

    legal_name = StringField(FIELD_LABELS["legal_name"], validators=[_required, at_most(200)])
    legal_name_kana = StringField(
        FIELD_LABELS["legal_name_kana"], validators=[_required, at_most(200)]
    )
    postal_code = StringField(FIELD_LABELS["postal_code"], validators=[_required, at_most(10)])
    address = StringField(FIELD_LABELS["address"], validators=[_required, at_most(300)])
    phone = StringField(FIELD_LABELS["phone"], validators=[_required, at_most(40)])
    billing_email = EmailField(
        FIELD_LABELS["billing_email"], validators=[_required, _email, at_most(254)]
    )
    contract_contact_name = StringField(
        FIELD_LABELS["contract_contact_name"], validators=[at_most(100)]
    )
    contract_contact_email = EmailField(
        FIELD_LABELS["contract_contact_email"], validators=[Optional(), _email, at_most(254)]
    )
    operations_contact_name = StringField(
        FIELD_LABELS["operations_contact_name"], validators=[at_most(100)]
    )
    operations_contact_email = EmailField(
        FIELD_LABELS["operations_contact_email"], validators=[Optional(), _email, at_most(254)]
    )
    locale = SelectField(FIELD_LABELS["locale"], choices=LANGUAGE_CHOICES)
    admin_name = StringField(_l("Administrator name"), validators=[_required, at_most(100)])
    admin_email = EmailField(
        _l("Administrator e-mail"), validators=[_required, _email, at_most(254)]
    )
    # The service says "Choose a plan that is on sale." of anything else (validate_choice off).
    plan_id = SelectField(
        _l("Plan"), coerce=_plan_id, validate_choice=False, validators=[_required]
    )
    service_start = DateField(
        _l("Service start wished"),
        validators=[DataRequired(_l("Enter the service start date."))],
    )
    # I-NET SERVICE only: the service checks them when the plan is I-NET SERVICE's and
    # ignores them otherwise (so nothing here refuses what another plan does not use).
    inet_application_contact_name = StringField(
        _l("Application contact"), validators=[at_most(100)]
    )
    inet_application_contact_email = EmailField(
        _l("Application contact e-mail"), validators=[at_most(254)]
    )
    inet_operations_manager_name = StringField(_l("Operations manager"), validators=[at_most(100)])
    inet_operations_manager_email = EmailField(
        _l("Operations manager e-mail"), validators=[at_most(254)]
    )
    # Sending the application e-mails staff: the confirmation page sends the form again with
    # "yes" (send) or "edit" (show the form again, as typed).
    confirmed = HiddenField()


class WithdrawApplicationForm(FlaskForm):
    """Withdrawing is asked once more: "yes" withdraws, "edit" goes back."""

    confirmed = HiddenField()


def _applicant() -> Actor:
    """R-71: agents of sales agents and agencies; for anyone else these pages do not exist."""
    actor = current_actor()
    if not can_apply_for_clients(actor):
        abort(404)
    return actor


def plan_label(plan: Plan, locale: str, *, fees: bool) -> str:
    """A plan as a choice: its service and name, and its monthly fee only for those who may
    see fees (R-71); I-NET SERVICE has no price (R-80)."""
    label = f"{plan.price_list.service.name(locale)} / {plan.name(locale)}"
    if fees and plan.price_list.service.paid:
        monthly = _("%(fee)s a month", fee=yen(plan.monthly_fee))
        label = f"{label} · {monthly}"
    return label


def _application_form(actor: Actor) -> ApplicationForm:
    form = ApplicationForm()
    locale, fees = str(get_locale()), can_see_fees(actor)
    form.plan_id.choices = [
        SelectChoice(p.id, plan_label(p, locale, fees=fees))
        for p in organisation_service.sellable_plans()
    ]
    return form


def _draft(form: ApplicationForm) -> applications.Draft:
    data = {
        k: v for k, v in form.data.items() if k not in ("csrf_token", "confirmed") and v is not None
    }
    data.setdefault("plan_id", None)
    data.setdefault("service_start", None)
    return applications.Draft(**data)


def _form_page(form: ApplicationForm, status: int = 200):
    return render_template("partners/application_form.html", form=form), status


@bp.get("/applications", endpoint="applications")
@login_required
def applications_list():
    """The company's applications for new clients, newest first."""
    actor = _applicant()
    return render_template(
        "partners/applications.html",
        rows=applications.of_partner(actor.user.partner_id),
        statuses=applications.STATUS_NAMES,
    )


@bp.route("/applications/new", methods=["GET", "POST"])
@login_required
def new_application():
    actor = _applicant()
    form = _application_form(actor)
    if request.method == "GET":
        form.service_start.data = form.service_start.data or clock.today()
    if not form.validate_on_submit():
        return _form_page(form, 422 if form.is_submitted() else 200)
    if form.confirmed.data == "edit":
        return _form_page(form)
    draft = _draft(form)
    try:
        if form.confirmed.data != "yes":
            checked = applications.check(actor, draft)
            return _confirm_page(form, actor, checked)
        application = applications.submit(actor, draft, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(404)
    except applications.InvalidApplication as exc:
        db.session.rollback()
        _show_errors(form, exc.errors)
        return _form_page(form, 422)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "legal_name")
        return _form_page(form, 422)
    flash(
        _(
            "Your application for %(org)s was sent. The provider's staff will review it; you "
            "are told by e-mail when they decide.",
            org=application.legal_name,
        ),
        "success",
    )
    return redirect(url_for("partners.application", application_id=application.id))


def _show_errors(form: FlaskForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None)
        (field.errors if field is not None else form.form_errors).append(message)


def _confirm_page(form: ApplicationForm, actor: Actor, checked: applications.Checked):
    """What will be sent, as the agent typed it; the sales agent's with the fees (R-11), the
    agency's with none (R-71)."""
    return render_template(
        "partners/application_confirm.html",
        form=form,
        values=checked.values,
        plan=checked.plan,
        fees=checked.fees if can_see_fees(actor) else None,
        inet=applications.is_inet_plan(checked.plan),
    )


@bp.get("/applications/<int:application_id>")
@login_required
def application(application_id: int):
    actor = _applicant()
    found = get_partner_application_or_404(application_id, actor)
    return render_template(
        "partners/application.html",
        application=found,
        fees=applications.fees_of(found.plan) if can_see_fees(actor) else None,
        inet=applications.is_inet_plan(found.plan),
        statuses=applications.STATUS_NAMES,
        form=WithdrawApplicationForm(formdata=None),
    )


@bp.post("/applications/<int:application_id>/withdraw")
@login_required
def withdraw_application(application_id: int):
    """Asked once more first (the confirmation page), then withdrawn for good."""
    actor = _applicant()
    found = get_partner_application_or_404(application_id, actor)
    form = WithdrawApplicationForm()
    if not form.validate_on_submit():
        abort(400)
    back = redirect(url_for("partners.application", application_id=found.id))
    if form.confirmed.data == "edit":
        return back
    if found.status != ApplicationStatus.PENDING:
        flash(_("This application was already decided."), "error")
        return back
    if form.confirmed.data != "yes":
        return render_template(
            "_confirm.html",
            form=form,
            action=url_for("partners.withdraw_application", application_id=found.id),
            summary=[
                _(
                    "Withdraw the application for %(org)s, sent at %(date)s.",
                    org=found.legal_name,
                    date=tokyo_minute(found.submitted_at),
                ),
                _("The provider's staff will not review it; nothing is onboarded."),
                _("To apply again, send a new application."),
            ],
            confirm_label=_("Withdraw the application"),
        )
    try:
        applications.withdraw(actor, found, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(404)
    except PortalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    flash(_("The application for %(org)s was withdrawn.", org=found.legal_name), "success")
    return back
