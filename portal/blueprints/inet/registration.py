"""I-NET SERVICE in the customer's portal: the registration (R-80), its contacts (IN 16), its
end and the day the photos will be deleted (R-83).

Administrators, agents inside a client's portal (R-71) and staff viewing as the customer
(R-72) see the page; members do not (403: ID cards are managed by administrators, R-85).
Administrators apply and consent for the organisation; agents apply for their client without
consenting; staff viewing as the customer neither apply nor end. Only the organisation's own
administrators end the registration.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.inet import bp
from portal.blueprints.inet.forms_registration import ApplyForm, ConfirmForm, ContactsForm
from portal.blueprints.validators import show_error
from portal.clock import clock
from portal.domain import inet as rules
from portal.extensions import db
from portal.permissions import (
    Actor,
    can_apply_for_inet,
    can_consent_to_terms,
    can_end_inet_registration,
    can_manage_card_holders,
    can_see_inet,
    can_use_customer_portal,
)
from portal.presentation import long_date
from portal.services import inet_registrations as registrations
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import client_ip, current_actor


def _portal_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    return actor


def _reader() -> Actor:
    actor = _portal_actor()
    if not can_see_inet(actor):
        abort(403, _("ID cards are managed by your organisation's administrators."))
    return actor


def _link(endpoint: str) -> str | None:
    """A page of another part of I-NET SERVICE, when the app has it."""
    return url_for(endpoint) if endpoint in current_app.view_functions else None


def _contacts(form: ContactsForm) -> registrations.Contacts:
    return registrations.Contacts(
        application_contact_name=form.application_contact_name.data or "",
        application_contact_email=form.application_contact_email.data or "",
        operations_manager_name=form.operations_manager_name.data or "",
        operations_manager_email=form.operations_manager_email.data or "",
    )


def _show_errors(form, exc: PortalError, default: str) -> None:
    if isinstance(exc, registrations.InvalidInput):
        for name, message in exc.errors.items():
            field = getattr(form, name, None)
            (field.errors if field is not None else form.form_errors).append(message)
    else:
        show_error(form, exc, default)


def _home_page(
    actor: Actor,
    *,
    apply_form: ApplyForm | None = None,
    contacts_form: ContactsForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    today = clock.today()
    registration = registrations.open_registration(organisation_id)
    latest = registration or registrations.latest_registration(organisation_id)
    terms_state = registrations.terms_state(organisation_id, today)
    may_apply = registration is None and can_apply_for_inet(actor)
    if may_apply and apply_form is None:
        apply_form = ApplyForm(
            formdata=None, obj=latest if latest is not None else None
        )  # a new registration starts from the last one's contacts
    if apply_form is not None and terms_state.version is not None:
        apply_form.terms_version_id.data = str(terms_state.version.id)
    if registration is not None and can_apply_for_inet(actor) and contacts_form is None:
        contacts_form = ContactsForm(formdata=None, obj=registration)
    return render_template(
        "inet/registration/home.html",
        registration=registration,
        latest=latest,
        terms_state=terms_state,
        refusal=registrations.ordering_refusal(organisation_id, today)
        if registration is not None
        else None,
        apply_form=apply_form if may_apply else None,
        asks_consent=can_consent_to_terms(actor),
        contacts_form=contacts_form if registration is not None else None,
        may_end=registration is not None and can_end_inet_registration(actor),
        end_form=ConfirmForm(formdata=None),
        holders_url=_link("inet.holders") if can_manage_card_holders(actor) else None,
        orders_url=_link("inet.orders"),
        channel_name=registrations.channel_name,
        end_reason_name=registrations.end_reason_name,
        photos_delete_on=registrations.photos_delete_on(organisation_id),
        errors=errors or [],
    ), status


@bp.get("/")
@login_required
def home():
    return _home_page(_reader())


@bp.post("/apply")
@login_required
def apply():
    """R-80: apply for I-NET SERVICE (free); an administrator consents for the organisation."""
    actor = _reader()
    if not can_apply_for_inet(actor):
        abort(403, _("Only the organisation's administrators and its agents apply."))
    form = ApplyForm()
    if not form.validate_on_submit():
        return _home_page(actor, apply_form=form, status=422)
    version_id = form.terms_version_id.data or ""
    try:
        registrations.register(
            actor,
            actor.organisation,
            _contacts(form),
            consent=bool(form.consent.data) and can_consent_to_terms(actor),
            terms_version_id=int(version_id) if version_id.isdigit() else None,
            ip=client_ip(),
        )
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _home_page(actor, apply_form=form, errors=[str(exc)], status=409)
    except PortalError as exc:
        db.session.rollback()
        _show_errors(form, exc, "application_contact_name")
        return _home_page(actor, apply_form=form, status=422)
    db.session.commit()
    flash(_("Your organisation is registered for I-NET SERVICE."), "success")
    if not can_consent_to_terms(actor):
        flash(
            _(
                "The organisation's administrators were asked to consent to the I-NET SERVICE "
                "terms; cards can be ordered once they have."
            ),
            "info",
        )
    return redirect(url_for("inet.home"))


@bp.post("/contacts")
@login_required
def contacts():
    """IN 16: name a new application contact or operations manager."""
    actor = _reader()
    if not can_apply_for_inet(actor):
        abort(403, _("Only the organisation's administrators and its agents change the contacts."))
    form = ContactsForm()
    if not form.validate_on_submit():
        return _home_page(actor, contacts_form=form, status=422)
    registration = registrations.open_registration(actor.organisation_id)
    if registration is None:
        abort(404)
    try:
        changed = registrations.change_contacts(
            actor, registration, _contacts(form), ip=client_ip()
        )
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _home_page(actor, contacts_form=form, errors=[str(exc)], status=409)
    except PortalError as exc:
        db.session.rollback()
        _show_errors(form, exc, "application_contact_name")
        return _home_page(actor, contacts_form=form, status=422)
    db.session.commit()
    flash(_("The contacts were saved.") if changed else _("Nothing changed."), "success")
    return redirect(url_for("inet.home"))


@bp.post("/end")
@login_required
def end():
    """R-83: an administrator ends the organisation's use today, after a confirmation that
    says when the photos will be deleted."""
    actor = _reader()
    if not can_end_inet_registration(actor):
        abort(403, _("Only the organisation's administrators end its I-NET SERVICE."))
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirmed.data == "edit":
        return redirect(url_for("inet.home"))
    today = clock.today()
    delete_on = rules.photos_delete_on(today)
    if form.confirmed.data != "yes":
        return render_template(
            "_confirm.html",
            form=form,
            action=url_for("inet.end"),
            summary=[
                _(
                    "Your organisation's use of I-NET SERVICE ends today, %(date)s; no more "
                    "cards can be ordered.",
                    date=long_date(today),
                ),
                _(
                    "Your card holders' photos are deleted on %(date)s, one month later, and "
                    "the deletion is recorded.",
                    date=long_date(delete_on),
                ),
                _("You may register again at any time; registering again keeps the photos."),
                _("A notice with these dates is e-mailed to your organisation."),
            ],
            confirm_label=_("End I-NET SERVICE"),
        )
    registration = registrations.open_registration(actor.organisation_id)
    try:
        if registration is None:
            raise Conflict(_("This registration has already ended."))
        registrations.end_registration(actor, registration, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        return _home_page(actor, errors=[str(exc)], status=409)
    db.session.commit()
    flash(
        _(
            "I-NET SERVICE ended today. Your card holders' photos will be deleted on %(date)s.",
            date=long_date(registration.photos_delete_on),
        ),
        "success",
    )
    return redirect(url_for("inet.home"))
