"""The provider's side of misuse reports (R-63): every staff role sees them at once, newest
and unhandled first; support staff (and staff administrators) record what was done."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.security.forms import HandledForm
from portal.blueprints.validators import show_error
from portal.extensions import db
from portal.models import MisuseReport, User
from portal.paging import page_number
from portal.permissions import (
    can_handle_misuse_reports,
    can_see_misuse_reports,
    get_misuse_report_for_staff_or_404,
)
from portal.presentation import tokyo_minute
from portal.services import accounts
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import back_office_actor, client_ip

bp = Blueprint("security", __name__, url_prefix="/staff/misuse-reports")


def _page_asked() -> int | None:
    """The list's page the form was sent from (None: the first), for the way back."""
    page = page_number(request.args)
    return page if page > 1 else None


def _page(
    *,
    form: HandledForm | None = None,
    form_for: int | None = None,
    error: str | None = None,
    status: int = 200,
):
    reports = accounts.misuse_reports(page=page_number(request.args))
    ids = {r.handled_by_id for r in reports if r.handled_by_id}
    handlers = (
        {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}
        if ids
        else {}
    )
    return render_template(
        "security/misuse_reports.html",
        reports=reports,
        handlers=handlers,
        form=form or HandledForm(formdata=None),
        form_for=form_for,
        error=error,
    ), status


@bp.get("")
@login_required
def misuse_reports():
    actor = back_office_actor()
    if not can_see_misuse_reports(actor):
        abort(403)
    return _page()


@bp.post("/<int:report_id>/handled")
@login_required
def mark_handled(report_id: int):
    actor = back_office_actor()
    report: MisuseReport = get_misuse_report_for_staff_or_404(report_id, actor)
    if not can_handle_misuse_reports(actor):
        abort(403, _("Only support staff handle misuse reports."))
    form = HandledForm()
    if not form.validate_on_submit():
        return _page(form=form, form_for=report.id, status=422)
    if form.confirmed.data == "edit":
        return _page(form=form, form_for=report.id)
    try:
        if form.confirmed.data != "yes":
            accounts.check_handling(actor, report, form.note.data or "")
            return _confirm_handling(form, report)
        accounts.mark_handled(actor, report, form.note.data or "", ip=client_ip())
    except NotAllowed as exc:
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _page(error=str(exc), status=409)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "note")
        return _page(form=form, form_for=report.id, status=422)
    db.session.commit()
    flash(_("The report was marked as handled."), "success")
    # Back to the page of the list it was handled from.
    return redirect(url_for("security.misuse_reports", page=_page_asked()))


def _confirm_handling(form: HandledForm, report: MisuseReport):
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("security.mark_handled", report_id=report.id, page=_page_asked()),
        summary=[
            _(
                "Mark the report of %(name)s (%(email)s), made at %(time)s, as handled.",
                name=report.user.name,
                email=report.user.email,
                time=tokyo_minute(report.reported_at),
            ),
            _("What was done: %(note)s", note=(form.note.data or "").strip()),
            _("A report is handled once: the note cannot be changed afterwards."),
        ],
        confirm_label=_("Mark as handled"),
    )
