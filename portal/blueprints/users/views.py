"""The users of an organisation (R-70): administrators invite, re-invite and remove them.

Members and agents manage no users; staff viewing as the customer may look but never change
anyone's login (R-72).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.exc import IntegrityError

from portal.blueprints.users.forms import InviteForm, RemoveUserForm, UserActionForm
from portal.blueprints.validators import show_error
from portal.extensions import db
from portal.models import CustomerRole, User
from portal.permissions import (
    Actor,
    can_manage_users,
    can_see_users,
    can_use_customer_portal,
    get_organisation_user_or_404,
)
from portal.services import accounts
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import client_ip, current_actor

bp = Blueprint("users", __name__, url_prefix="/organisation/users")


def _portal_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    return actor


def _require_managing(actor: Actor) -> Actor:
    if not can_manage_users(actor):
        abort(403, _("Only the organisation's administrators manage its users."))
    return actor


def _managing_actor() -> Actor:
    return _require_managing(_portal_actor())


@bp.get("")
@login_required
def index():
    actor = _portal_actor()
    if not can_see_users(actor):
        abort(403, _("Only the organisation's administrators manage its users."))
    return _list_page(actor)


def _invite_page(form: InviteForm, status: int = 200):
    return render_template("users/invite.html", form=form), status


@bp.route("/invite", methods=["GET", "POST"])
@login_required
def invite():
    actor = _managing_actor()
    form = InviteForm()
    if not form.validate_on_submit():
        return _invite_page(form, 422 if form.is_submitted() else 200)
    try:
        user = accounts.invite(
            actor,
            name=form.name.data,
            email=form.email.data,
            role=CustomerRole(form.role.data),
            locale=form.locale.data,
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed as exc:
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "email")
        return _invite_page(form, 422)
    except IntegrityError:
        # The same address invited twice at once: the unique e-mail lets one through.
        db.session.rollback()
        form.email.errors.append(_("A user with this e-mail address already exists."))
        return _invite_page(form, 422)
    flash(
        _("%(email)s was invited and will receive a link to choose a password.", email=user.email),
        "success",
    )
    return redirect(url_for("users.index"))


def _list_page(actor: Actor, *, error: str | None = None, status: int = 200):
    return render_template(
        "users/index.html",
        users=accounts.users_of(actor.organisation),
        action_form=UserActionForm(),
        error=error,
    ), status


def _user_to_change(user_id: int, form: UserActionForm | RemoveUserForm) -> tuple[Actor, User]:
    """Load (another organisation's user: 404), then authorize (403)."""
    actor = _portal_actor()
    user = get_organisation_user_or_404(user_id, actor)
    _require_managing(actor)
    if not form.validate_on_submit():
        abort(400)
    return actor, user


@bp.post("/<int:user_id>/invitation")
@login_required
def resend_invitation(user_id: int):
    """A new invitation link; the earlier ones stop working."""
    actor, user = _user_to_change(user_id, UserActionForm())
    try:
        accounts.resend_invitation(actor, user, ip=client_ip())
    except NotAllowed as exc:
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _list_page(actor, error=str(exc), status=409)
    db.session.commit()
    flash(_("A new invitation was sent to %(email)s.", email=user.email), "success")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/removal")
@login_required
def remove(user_id: int):
    """R-70/R-63: the user can no longer sign in; their sessions end at once. Asked once
    more first: a removal cannot be undone."""
    form = RemoveUserForm()
    actor, user = _user_to_change(user_id, form)
    if form.confirmed.data == "edit":
        return redirect(url_for("users.index"))
    try:
        if form.confirmed.data != "yes":
            accounts.check_removal(actor, user)
            return _confirm_removal(form, user)
        accounts.remove_user(actor, user, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _list_page(actor, error=str(exc), status=409)
    db.session.commit()
    flash(_("%(name)s was removed and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("users.index"))


def _confirm_removal(form: RemoveUserForm, user: User):
    role = _("Administrator") if user.customer_role == CustomerRole.ADMINISTRATOR else _("Member")
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("users.remove", user_id=user.id),
        summary=[
            _(
                "Remove %(name)s (%(email)s, %(role)s).",
                name=user.name,
                email=user.email,
                role=role,
            ),
            _(
                "They are signed out everywhere at once and can no longer sign in; an "
                "invitation link they have stops working."
            ),
            _("A removal cannot be undone, and this e-mail address cannot be invited again."),
        ],
        confirm_label=_("Remove"),
    )
