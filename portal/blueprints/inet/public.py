"""I-NET SERVICE's public application (R-80): anyone applies for their company, consenting to
the terms in force; the first administrator's e-mail address is verified by a link that works
once, for 24 hours, and the organisation, its administrator and its registration are created
when the link is used. Rate-limited per client address and per e-mail address; the answer is
the same whether the address has an account (the account's owner is told to sign in)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from portal.blueprints.inet import public_bp
from portal.blueprints.inet.forms_registration import PublicApplicationForm, VerifyForm
from portal.clock import clock
from portal.extensions import db, limiter
from portal.services import auth
from portal.services import inet_registrations as registrations
from portal.services.errors import Conflict, PortalError
from portal.web import client_ip, end_browser_session


def _signed_in():
    """The public pages are for people without an account here: whoever is signed in applies
    from their organisation's portal."""
    flash(_("You are signed in. Apply for I-NET SERVICE from your organisation's portal."), "info")
    return redirect(url_for("main.index"))


def _address_key() -> str:
    return "inet-apply:" + auth.normalise_email(request.form.get("admin_email", ""))[:254]


@public_bp.route("/apply", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config.get("INET_APPLICATION_RATE_LIMIT_PER_IP", "10 per hour"),
    methods=["POST"],
)
@limiter.limit(
    lambda: current_app.config.get("INET_APPLICATION_RATE_LIMIT_PER_ADDRESS", "3 per hour"),
    methods=["POST"],
    key_func=_address_key,
)
def apply():
    if current_user.is_authenticated:
        return _signed_in()
    version = registrations.terms_in_force(clock.today())
    form = PublicApplicationForm()

    def page(status: int):
        if version is not None:
            form.terms_version_id.data = str(version.id)
        return render_template("inet/public/apply.html", form=form, version=version), status

    if not form.validate_on_submit():
        return page(422 if form.is_submitted() else 200)
    if version is None:  # no terms to consent to: no application
        return page(409)
    version_id = form.terms_version_id.data or ""
    application = registrations.PublicApplication(
        **{
            name: form[name].data or ""
            for name in (
                "legal_name",
                "legal_name_kana",
                "postal_code",
                "address",
                "phone",
                "application_contact_name",
                "application_contact_email",
                "operations_manager_name",
                "operations_manager_email",
                "admin_name",
                "admin_email",
                "locale",
            )
        },
        consent=bool(form.consent.data),
        terms_version_id=int(version_id) if version_id.isdigit() else None,
    )
    try:
        registrations.submit_application(application, ip=client_ip())
    except Conflict as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return page(409)
    except registrations.InvalidInput as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            field = form._fields.get(name)
            (field.errors if field is not None else form.form_errors).append(message)
        return page(422)
    db.session.commit()
    return redirect(url_for("inet_public.sent"))


@public_bp.get("/apply/sent")
def sent():
    if current_user.is_authenticated:
        return _signed_in()
    return render_template(
        "inet/public/sent.html",
        hours=int(registrations.APPLICATION_LIFETIME.total_seconds() // 3600),
    )


def _unusable(exc: registrations.ApplicationUnusable, status: int):
    return render_template("inet/public/link_unusable.html", message=str(exc)), status


@public_bp.route("/apply/<token>", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config.get("INET_APPLICATION_RATE_LIMIT_PER_IP", "10 per hour"),
    methods=["POST"],
)
def verify(token: str):
    """The e-mailed link: the application as sent and a password for the first administrator;
    submitting creates the organisation and signs the new administrator in."""
    if current_user.is_authenticated:
        return _signed_in()
    try:
        application = registrations.pending_application(token)
    except registrations.ApplicationUnusable as exc:
        return _unusable(exc, 404)
    form = VerifyForm()

    def page(status: int):
        return render_template(
            "inet/public/verify.html",
            form=form,
            application=application,
            details=application.details,
            min_password_length=auth.MIN_PASSWORD_LENGTH,
        ), status

    if not form.validate_on_submit():
        return page(422 if form.is_submitted() else 200)
    try:
        verified = registrations.verify_application(token, form.new_password.data, ip=client_ip())
    except registrations.ApplicationUnusable as exc:
        db.session.rollback()  # the other of two submissions at once, or an account meanwhile
        return _unusable(exc, 410)
    except PortalError as exc:
        db.session.rollback()
        form.new_password.errors.append(str(exc))
        return page(422)
    db.session.commit()
    user = verified.administrator
    end_browser_session()  # a fresh session id at sign-in: no session fixation
    auth.start_session(user, ip=client_ip(), user_agent=request.headers.get("User-Agent", ""))
    db.session.commit()
    login_user(user)
    flash(
        _(
            "Welcome. %(org)s is registered for I-NET SERVICE, and you are its administrator.",
            org=verified.organisation.legal_name,
        ),
        "success",
    )
    return redirect(url_for("inet.home"))
