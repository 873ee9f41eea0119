"""I-NET SERVICE registrations in the back office (R-80, R-84).

Every back-office role looks (billing and production staff read the list and the pages, as
they read organisations); support staff and staff administrators register organisations
(onboarding: the contacts only; the organisation's administrators consent in the portal) and
cancel dormant registrations. Staff viewing as a customer get 403, as everywhere in the back
office (R-72).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.inet import staff_bp
from portal.blueprints.inet.forms_registration import ConfirmForm, StaffRegisterForm
from portal.clock import clock
from portal.domain import inet as rules
from portal.extensions import db
from portal.models import Organisation
from portal.permissions import (
    Actor,
    can_manage_inet_registrations,
    get_organisation_for_staff_or_404,
)
from portal.presentation import long_date
from portal.services import inet_registrations as registrations
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import back_office_actor, client_ip


@staff_bp.get("/registrations", endpoint="registrations")
@login_required
def registrations_page():
    """The registrations, open (by default), dormant (R-84), ended or all, by organisation."""
    back_office_actor()
    state = request.args.get("state", "open")
    if state not in registrations.STATE_FILTERS:
        state = "open"
    q = "".join(c for c in request.args.get("q", "")[:100] if c.isprintable())
    today = clock.today()
    return render_template(
        "inet/staff/registrations.html",
        rows=registrations.registration_rows(today, state=state, q=q),
        state=state,
        q=q,
        channel_name=registrations.channel_name,
        end_reason_name=registrations.end_reason_name,
        limit=registrations.MAX_LISTED,
    )


def _organisation_page(
    actor: Actor,
    organisation: Organisation,
    *,
    form: StaffRegisterForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    today = clock.today()
    rows = registrations.registration_rows(today, state="all", organisation_id=organisation.id)
    current = next((r for r in rows if r.registration.is_open), None)
    may_manage = can_manage_inet_registrations(actor)
    if current is None and may_manage and form is None:
        latest = rows[0].registration if rows else None
        form = StaffRegisterForm(formdata=None, obj=latest)
    return render_template(
        "inet/staff/organisation.html",
        organisation=organisation,
        rows=rows,
        current=current,
        terms_state=registrations.terms_state(organisation.id, today),
        form=form if current is None and may_manage else None,
        cancel_form=ConfirmForm(formdata=None),
        may_manage=may_manage,
        channel_name=registrations.channel_name,
        end_reason_name=registrations.end_reason_name,
        errors=errors or [],
    ), status


@staff_bp.get("/organisations/<int:organisation_id>")
@login_required
def organisation(organisation_id: int):
    actor = back_office_actor()
    found = get_organisation_for_staff_or_404(organisation_id, actor)
    return _organisation_page(actor, found)


def _managed(organisation_id: int) -> tuple[Actor, Organisation]:
    """Staff who manage registrations, and the organisation (another id is 404 first)."""
    actor = back_office_actor()
    found = get_organisation_for_staff_or_404(organisation_id, actor)
    if not can_manage_inet_registrations(actor):
        abort(403, _("Only support staff register organisations for I-NET SERVICE."))
    return actor, found


@staff_bp.post("/organisations/<int:organisation_id>/register")
@login_required
def register(organisation_id: int):
    """R-80: staff onboarding. The organisation is told by e-mail and its administrators are
    asked to consent to the terms: a confirmation step first."""
    actor, found = _managed(organisation_id)
    form = StaffRegisterForm()
    if not form.validate_on_submit():
        return _organisation_page(actor, found, form=form, status=422)
    if form.confirmed.data == "edit":
        return _organisation_page(actor, found, form=form)
    contacts = registrations.Contacts(
        form.application_contact_name.data,
        form.application_contact_email.data,
        form.operations_manager_name.data,
        form.operations_manager_email.data,
    )
    try:
        if form.confirmed.data != "yes":
            registrations.check_contacts(contacts)
            if registrations.open_registration(found.id) is not None:
                raise Conflict(_("The organisation is already registered for I-NET SERVICE."))
            return render_template(
                "_confirm.html",
                form=form,
                action=url_for("staff_inet.register", organisation_id=found.id),
                summary=[
                    _("Register %(org)s for I-NET SERVICE (free of charge).", org=found.legal_name),
                    _(
                        "Application contact: %(name)s <%(email)s>. Operations manager: "
                        "%(manager)s <%(manager_email)s>.",
                        name=contacts.application_contact_name.strip(),
                        email=contacts.application_contact_email.strip(),
                        manager=contacts.operations_manager_name.strip(),
                        manager_email=contacts.operations_manager_email.strip(),
                    ),
                    _(
                        "The organisation is told by e-mail at once; its administrators are "
                        "asked to consent to the terms in the portal before ordering cards."
                    ),
                ],
                confirm_label=_("Register"),
            )
        registrations.register(actor, found, contacts, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except registrations.InvalidInput as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            form[name].errors.append(message)
        return _organisation_page(actor, found, form=form, status=422)
    except PortalError as exc:
        db.session.rollback()
        return _organisation_page(actor, found, errors=[str(exc)], status=409)
    db.session.commit()
    flash(_("%(org)s is registered for I-NET SERVICE.", org=found.legal_name), "success")
    return redirect(url_for("staff_inet.organisation", organisation_id=found.id))


@staff_bp.post("/organisations/<int:organisation_id>/cancel")
@login_required
def cancel(organisation_id: int):
    """R-84: cancel a registration unused for three years; the organisation is told and may
    register again. Refused (409) for one that is not dormant."""
    actor, found = _managed(organisation_id)
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirmed.data == "edit":
        return redirect(url_for("staff_inet.organisation", organisation_id=found.id))
    registration = registrations.open_registration(found.id)
    today = clock.today()
    try:
        if registration is None:
            raise Conflict(_("The organisation has no open registration."))
        row = registrations.row_of(registration, today)
        if not row.is_dormant:
            raise Conflict(
                _("This registration was used in the last three years: it is not dormant.")
            )
        if form.confirmed.data != "yes":
            return render_template(
                "_confirm.html",
                form=form,
                action=url_for("staff_inet.cancel", organisation_id=found.id),
                summary=[
                    _(
                        "Cancel the I-NET SERVICE registration of %(org)s, unused since %(date)s.",
                        org=found.legal_name,
                        date=long_date(row.last_used_on),
                    ),
                    _(
                        "Its usage ends today; its card holders' photos are deleted on %(date)s.",
                        date=long_date(rules.photos_delete_on(today)),
                    ),
                    _(
                        "The organisation is told by e-mail that the registration was cancelled "
                        "and that it may register again."
                    ),
                ],
                confirm_label=_("Cancel the registration"),
            )
        registrations.cancel_dormant(actor, registration, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        return _organisation_page(actor, found, errors=[str(exc)], status=409)
    db.session.commit()
    flash(
        _(
            "The registration of %(org)s was cancelled; its photos will be deleted on %(date)s.",
            org=found.legal_name,
            date=long_date(registration.photos_delete_on),
        ),
        "success",
    )
    return redirect(url_for("staff_inet.organisation", organisation_id=found.id))


@staff_bp.app_context_processor
def _inet_registration() -> dict[str, object]:
    """The back office's organisation page shows the organisation's I-NET SERVICE
    registration (its open one, or the one that ended last) and links here."""
    return {"inet_registration": registrations.latest_registration}
