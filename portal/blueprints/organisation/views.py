"""The customer's registered information and its history (R-62), and its notices (R-61)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.organisation.forms import InformationForm
from portal.extensions import db
from portal.paging import page_number
from portal.permissions import (
    Actor,
    can_change_information,
    can_see_information,
    can_see_notices,
    get_notice_or_404,
)
from portal.services import information as information_service
from portal.services import mail
from portal.services.errors import NotAllowed
from portal.web import client_ip, current_actor

bp = Blueprint("organisation", __name__)


def _portal_actor() -> Actor:
    actor = current_actor()
    if not can_see_information(actor):
        abort(404)
    return actor


def _information_page(actor: Actor, form: InformationForm | None, status: int = 200):
    organisation = actor.organisation
    return render_template(
        "organisation/information.html",
        organisation=organisation,
        values=information_service.registered(organisation),
        fields=information_service.FIELDS,
        form=form,
        label=information_service.label,
        shown=information_service.shown,
    ), status


@bp.route("/organisation", methods=["GET", "POST"])
@login_required
def information():
    """R-62: the registered information; administrators and agents change it."""
    actor = _portal_actor()
    organisation = actor.organisation
    if not can_change_information(actor):
        if request.method == "POST":
            abort(403, _("Only administrators and agents change the registered information."))
        return _information_page(actor, None)
    if request.method == "GET":
        values = information_service.registered(organisation)
        form = InformationForm(
            formdata=None, data={**values, "based_on": information_service.fingerprint(values)}
        )
        return _information_page(actor, form)

    form = InformationForm()
    if not form.validate_on_submit():
        return _information_page(actor, form, 422)
    submitted = {field: form[field].data for field in information_service.FIELDS}
    try:
        changes = information_service.change(
            actor,
            organisation,
            submitted,
            based_on=information_service.parse_base(form.based_on.data),
            ip=client_ip(),
        )
    except NotAllowed as exc:
        abort(403, str(exc))
    except information_service.InvalidInformation as exc:
        for field, message in exc.errors.items():
            form[field].errors.append(message)
        return _information_page(actor, form, 422)
    except information_service.StaleInformation as exc:
        db.session.rollback()
        # Shown as it is now, with this form's own changes on top, and based on now.
        values = {**exc.current, **{c.field: c.new for c in exc.changes}}
        form = InformationForm(
            formdata=None, data={**values, "based_on": information_service.fingerprint(exc.current)}
        )
        form.form_errors.append(str(exc))
        for field in exc.conflicting:
            form[field].errors = [
                _(
                    "Changed meanwhile to “%(value)s”. Save again to replace it with yours.",
                    value=information_service.shown(field, exc.current[field]),
                )
            ]
        return _information_page(actor, form, 409)
    db.session.commit()
    if not changes:
        flash(_("Nothing changed."), "info")
        return redirect(url_for("organisation.information"))
    if any(c.field in information_service.EMAIL_FIELDS for c in changes):
        flash(
            _("The information was changed. The old and the new e-mail address will be notified."),
            "success",
        )
    else:
        flash(_("The information was changed."), "success")
    return redirect(url_for("organisation.information"))


@bp.get("/organisation/history")
@login_required
def history():
    """R-62: who changed what, when, from what to what."""
    actor = _portal_actor()
    rows = information_service.history_page(actor.organisation, page_number(request.args))
    return render_template("organisation/history.html", rows=rows)


def _require_notices(actor: Actor) -> None:
    if not can_see_notices(actor):
        abort(403, _("Notices are shown to the customer's administrators and sales agents."))


@bp.get("/notices")
@login_required
def notices():
    """R-61: every notice sent to the organisation, with the time it was sent; each once,
    with all its recipients."""
    actor = _portal_actor()
    _require_notices(actor)
    notices = mail.notices_page(actor.organisation_id, page_number(request.args))
    return render_template("organisation/notices.html", notices=notices)


@bp.get("/notices/<int:email_id>")
@login_required
def notice(email_id: int):
    actor = _portal_actor()
    found = get_notice_or_404(email_id, actor)  # another's (or not a notice): 404 first
    _require_notices(actor)
    return render_template("organisation/notice.html", notice=mail.notice_containing(found))
