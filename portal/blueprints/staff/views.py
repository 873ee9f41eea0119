"""Provider staff: organisations, onboarding, any contract, viewing as a customer (R-72)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice

from portal import mailer
from portal.blueprints.contracts.views import contract_page
from portal.blueprints.staff.forms import OnboardForm, RetryMailForm, UsageForm, ViewAsForm
from portal.blueprints.validators import show_error
from portal.clock import TOKYO, clock
from portal.extensions import db, htmx
from portal.models import CustomerRole, PartnerCompany, PartnerKind, UsageSource
from portal.paging import page_number
from portal.permissions import (
    can_onboard,
    can_record_usage,
    can_retry_mail,
    can_see_mail_queue,
    can_view_as_customer,
    get_contract_for_staff_or_404,
    get_organisation_for_staff_or_404,
)
from portal.presentation import long_date, tokyo_minute, yen
from portal.services import audit, entries, mail
from portal.services import contracts as contract_service
from portal.services import information as information_service
from portal.services import organisations as organisation_service
from portal.services import usage as usage_service
from portal.services.errors import NotAllowed, PortalError
from portal.web import back_office_actor, client_ip, current_actor, current_session

bp = Blueprint("staff", __name__, url_prefix="/staff")

STAFF_PAGE_LATEST = 10  # notices and information changes shown on an organisation's page


@bp.get("/organisations")
@login_required
def organisations():
    back_office_actor()
    q = request.args.get("q", "")[:100]
    found = organisation_service.search(q, page=page_number(request.args))
    template = "staff/_organisation_rows.html" if htmx else "staff/organisations.html"
    return render_template(template, organisations=found, q=q)


def _onboard_form() -> OnboardForm:
    form = OnboardForm()
    locale = str(get_locale())
    form.plan_id.choices = [
        SelectChoice(
            p.id,
            f"{p.price_list.service.name(locale)} / {p.name(locale)} · {yen(p.monthly_fee)}",
        )
        for p in organisation_service.sellable_plans()
    ]
    partners = db.session.scalars(sa.select(PartnerCompany).order_by(PartnerCompany.name))
    form.partner_id.choices = [SelectChoice(0, _("Direct"))] + [
        SelectChoice(p.id, _partner_label(p)) for p in partners
    ]
    return form


def _partner_label(partner: PartnerCompany) -> str:
    kinds = {PartnerKind.AGENCY: _("agency"), PartnerKind.SALES_AGENT: _("sales agent")}
    return f"{partner.name} ({kinds[partner.kind]})"


@bp.route("/organisations/new", methods=["GET", "POST"])
@login_required
def onboard():
    actor = back_office_actor()
    if not can_onboard(actor):
        abort(403)
    form = _onboard_form()
    if request.method == "GET":
        form.service_start.data = form.service_start.data or clock.today()
    if not form.validate_on_submit():
        return render_template("staff/onboard.html", form=form), 422 if form.is_submitted() else 200
    if form.confirmed.data == "edit":
        return render_template("staff/onboard.html", form=form)
    # Fields left out of the request are None: let the application's defaults apply.
    data = {
        k: v
        for k, v in form.data.items()
        if k not in ("csrf_token", "partner_id", "confirmed") and v is not None
    }
    application = organisation_service.Application(**data, partner_id=form.partner_id.data or None)
    try:
        if form.confirmed.data != "yes":
            checked = organisation_service.check_application(actor, application)
            return _confirm_onboarding(form, application, checked)
        result = organisation_service.onboard(actor, application, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "legal_name")
        return render_template("staff/onboard.html", form=form), 422
    except IntegrityError:
        # The same application sent twice at once: the unique e-mail lets only one through.
        db.session.rollback()
        form.admin_email.errors.append(_("A user with this e-mail address already exists."))
        return render_template("staff/onboard.html", form=form), 422
    flash(_("%(org)s is onboarded", org=result.organisation.legal_name), "success")
    flash(
        _(
            "Contract no. %(id)d starts on %(date)s.",
            id=result.contract.id,
            date=long_date(result.contract.service_start),
        ),
        "info",
    )
    flash(
        _(
            "An invitation was e-mailed to %(email)s. With its link the administrator chooses "
            "their own password; it works once, until %(time)s. If it expires, the "
            "administrator asks for a new link with “Forgot your password?” on the sign-in "
            "page.",
            email=result.administrator.email,
            time=tokyo_minute(result.invitation_expires_at),
        ),
        "info",
    )
    return redirect(url_for("staff.organisation", organisation_id=result.organisation.id))


def _confirm_onboarding(form: OnboardForm, application, checked):
    """What onboarding will create, for staff to check against the paper application."""
    locale = str(get_locale())
    plan = checked.plan
    channel = _("Direct") if checked.partner is None else _partner_label(checked.partner)
    organisation = (
        _(
            "Create the organisation %(org)s (%(kana)s).",
            org=application.legal_name.strip(),
            kana=checked.legal_name_kana,
        )
        if checked.legal_name_kana
        else _("Create the organisation %(org)s.", org=application.legal_name.strip())
    )
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("staff.onboard"),
        summary=[
            organisation,
            _(
                "Its first contract: %(service)s / %(plan)s at %(fee)s a month, from %(date)s; "
                "billing months start on day %(day)d.",
                service=plan.price_list.service.name(locale),
                plan=plan.name(locale),
                fee=yen(plan.monthly_fee),
                date=long_date(application.service_start),
                day=application.anchor_day,
            ),
            _("Sold via: %(channel)s.", channel=channel),
            _(
                "%(name)s (%(email)s) becomes its first administrator and is invited by e-mail "
                "at once.",
                name=application.admin_name.strip(),
                email=application.admin_email.strip(),
            ),
            _(
                "This cannot be undone: the organisation and its contract are recorded and the "
                "invitation is sent."
            ),
        ],
        confirm_label=_("Onboard"),
    )


@bp.get("/organisations/<int:organisation_id>")
@login_required
def organisation(organisation_id: int):
    actor = back_office_actor()
    org = get_organisation_for_staff_or_404(organisation_id, actor)
    return _organisation_page(org, ViewAsForm())


def _role_label(user) -> str:
    return _("administrator") if user.customer_role == CustomerRole.ADMINISTRATOR else _("member")


def _as_user_choices(users) -> list[SelectChoice]:
    return [
        SelectChoice(u.id, f"{u.name} <{u.email}> ({_role_label(u)})") for u in users if u.active
    ]


def _organisation_page(org, form: ViewAsForm, status: int = 200):
    users = organisation_service.users_of(org)
    form.as_user_id.choices = _as_user_choices(users)
    today = clock.today()
    contracts = contract_service.contracts_of_organisations([org.id])
    return render_template(
        "staff/organisation.html",
        organisation=org,
        users=users,
        rows=contract_service.with_calendars(contracts, today),
        entries=contract_service.access_records(org),
        notices=mail.notices_of(org.id, limit=STAFF_PAGE_LATEST),
        history=information_service.history(org, limit=STAFF_PAGE_LATEST),
        form=form,
        may_view_as=can_view_as_customer(current_actor()),
    ), status


@bp.post("/organisations/<int:organisation_id>/view-as")
@login_required
def view_as(organisation_id: int):
    actor = back_office_actor()
    org = get_organisation_for_staff_or_404(organisation_id, actor)
    if not can_view_as_customer(actor):
        abort(403)
    form = ViewAsForm()
    users = {u.id: u for u in organisation_service.users_of(org)}
    # The choices must be known before validation (a SelectField without them raises).
    form.as_user_id.choices = _as_user_choices(users.values())
    if not form.validate_on_submit():
        return _organisation_page(org, form, 422)
    try:
        entries.start_staff_view(
            actor,
            org,
            as_user=users.get(form.as_user_id.data),
            reason=form.reason.data,
            user_session=current_session(),
            max_minutes=current_app.config["VIEW_AS_MAX_MINUTES"],
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed:
        abort(403)
    except PortalError as exc:
        show_error(form, exc, "reason")
        return _organisation_page(org, form, 422)
    except IntegrityError:
        # The same start sent twice at once: one open view per session (a unique index).
        db.session.rollback()
        return redirect(url_for("contracts.home"))
    flash(_("You are viewing the portal as the customer. Every action is recorded."), "warning")
    return redirect(url_for("contracts.home"))


@bp.get("/contracts/<int:contract_id>")
@login_required
def contract(contract_id: int):
    actor = back_office_actor()
    found = get_contract_for_staff_or_404(contract_id, actor)
    return _contract_page(found, UsageForm(formdata=None))


def _contract_page(found, usage_form: UsageForm, status: int = 200):
    return render_template(
        "contracts/detail.html",
        **contract_page(found),
        staff_view=True,
        usage_form=usage_form if can_record_usage(current_actor()) else None,
    ), status


@bp.post("/contracts/<int:contract_id>/usage")
@login_required
def record_usage(contract_id: int):
    """R-15: staff record a usage measurement the service could not report."""
    actor = back_office_actor()
    found = get_contract_for_staff_or_404(contract_id, actor)
    if not can_record_usage(actor):
        abort(403)
    form = UsageForm()
    if not form.validate_on_submit():
        return _contract_page(found, form, 422)
    try:
        used = usage_service.parse_used_gb(form.used_gb.data)
        measured_at = form.measured_at.data.replace(tzinfo=TOKYO)
        usage_service.record(
            found, used, measured_at, source=UsageSource.STAFF, user=actor.user, ip=client_ip()
        )
        db.session.commit()
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "used_gb")
        return _contract_page(found, form, 422)
    flash(_("The measurement was recorded."), "success")
    return redirect(url_for("staff.contract", contract_id=found.id))


# --- the e-mail outbox (R-61) ------------------------------------------------------------------


@bp.get("/mail")
@login_required
def mail_queue():
    """What waits to be sent, and the e-mails given up after their last retry."""
    actor = back_office_actor()
    if not can_see_mail_queue(actor):
        abort(403)
    queue = mail.queue_state(page=page_number(request.args))
    return render_template("staff/mail.html", queue=queue, form=RetryMailForm())


@bp.post("/mail/retry")
@login_required
def retry_mail():
    """Put given-up e-mails back in the queue (one, or all), once the cause is fixed."""
    actor = back_office_actor()
    if not can_retry_mail(actor):
        abort(403)
    form = RetryMailForm()
    if not form.validate_on_submit():
        abort(400)
    ids = [form.email_id.data] if form.email_id.data else None
    count = mailer.retry_failed(ids)
    audit.record("mail.retried", actor=actor, ip=client_ip(), count=count, email_ids=ids or "all")
    db.session.commit()
    flash(_("%(n)d e-mail(s) will be sent again on the next run.", n=count), "success")
    return redirect(url_for("staff.mail_queue"))


# Partner companies have their own module; importing it adds its routes to `bp`.
# Partners' applications for new clients (issue 14): their own module too.
from portal.blueprints.staff import applications as _applications  # noqa: E402, F401
from portal.blueprints.staff import partners as _partners  # noqa: E402, F401
