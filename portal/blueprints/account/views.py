"""The signed-in user's own account: password (R-63)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.account.forms import PasswordForm
from portal.extensions import db
from portal.permissions import can_change_own_credentials
from portal.services import auth
from portal.services.errors import NotAllowed, PortalError
from portal.web import client_ip, current_actor, current_session

bp = Blueprint("account", __name__, url_prefix="/account")


def _page(form: PasswordForm) -> str:
    return render_template(
        "account/password.html", form=form, min_password_length=auth.MIN_PASSWORD_LENGTH
    )


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    actor = current_actor()
    if not can_change_own_credentials(actor):
        abort(403, _("Credentials cannot be changed while viewing as a customer."))
    form = PasswordForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _page(form), status
    try:
        auth.change_password(
            actor.user,
            is_staff_view=actor.is_staff_view,
            current_session=current_session(),
            current_password=form.current_password.data,
            new_password=form.new_password.data,
            ip=client_ip(),
        )
    except NotAllowed as exc:
        abort(403, str(exc))
    except PortalError as exc:
        getattr(form, exc.field or "new_password").errors.append(str(exc))
        return _page(form), 422
    db.session.commit()
    flash(_("Your password was changed. Your other sessions were ended."), "success")
    return redirect(url_for("main.index"))
