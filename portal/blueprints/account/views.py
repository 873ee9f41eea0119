"""The signed-in user's own account: password, reports of suspected misuse (R-63) and API
tokens."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.account.forms import (
    ApiTokenForm,
    MisuseForm,
    PasswordForm,
    RevokeTokenForm,
)
from portal.blueprints.validators import show_error
from portal.extensions import db
from portal.permissions import (
    can_change_own_credentials,
    can_manage_api_tokens,
    can_report_misuse,
)
from portal.services import accounts, api_tokens, auth
from portal.services.errors import NotAllowed, PortalError
from portal.web import client_ip, current_actor, current_session, end_browser_session

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
        show_error(form, exc, "new_password")
        return _page(form), 422
    db.session.commit()
    flash(_("Your password was changed. Your other sessions were ended."), "success")
    return redirect(url_for("main.index"))


def _tokens_actor():
    actor = current_actor()
    if not can_manage_api_tokens(actor):
        abort(403, _("API tokens cannot be managed while viewing as a customer."))
    return actor


# The plain token of a token just created, carried to the next GET of the list (post/
# redirect/get) and shown there once; only its SHA-256 is kept anywhere else.
NEW_TOKEN_KEY = "new_api_token"  # noqa: S105 (a session key, not a secret)


def _tokens_page(actor, form: ApiTokenForm, *, created: str | None = None, status: int = 200):
    response = make_response(
        render_template(
            "account/api_tokens.html",
            form=form,
            tokens=api_tokens.tokens_of(actor.user),
            revoke_form=RevokeTokenForm(),
            created=created,
        ),
        status,
    )
    if created:
        response.headers["Cache-Control"] = "no-store"  # the token is kept nowhere, not here
    return response


def _take_new_token(actor) -> str | None:
    """The token created by the POST that redirected here, once: taken out of the session,
    and only if it is still the user's own, unrevoked token."""
    carried = session.pop(NEW_TOKEN_KEY, None)
    if not isinstance(carried, dict):
        return None
    token = api_tokens.get_own_or_none(actor, int(carried.get("id") or 0))
    if token is None or token.revoked_at is not None:
        return None
    return str(carried.get("token") or "") or None


@bp.route("/api-tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """Create and list the user's tokens for /api/v1; a new token is shown once, on the
    list the creation redirects to."""
    actor = _tokens_actor()
    if request.method == "GET":
        return _tokens_page(actor, ApiTokenForm(formdata=None), created=_take_new_token(actor))
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _tokens_page(actor, form, status=422)
    try:
        token, plain = api_tokens.create(actor, form.name.data or "", ip=client_ip())
    except NotAllowed as exc:
        abort(403, str(exc))
    except PortalError as exc:
        show_error(form, exc, "name")
        return _tokens_page(actor, form, status=422)
    db.session.commit()
    session[NEW_TOKEN_KEY] = {"id": token.id, "token": plain}
    return redirect(url_for("account.tokens"))


@bp.post("/api-tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """A revoked token never works again: the confirmation page says so first."""
    actor = _tokens_actor()
    token = api_tokens.get_own_or_none(actor, token_id)
    if token is None:
        abort(404)
    form = RevokeTokenForm()
    if not form.validate_on_submit():
        abort(400)
    if token.revoked_at is not None:
        flash(_("The token was already revoked."), "info")
        return redirect(url_for("account.tokens"))
    if form.confirmed.data == "edit":
        return redirect(url_for("account.tokens"))
    if form.confirmed.data != "yes":
        return render_template(
            "_confirm.html",
            form=form,
            action=url_for("account.revoke_token", token_id=token.id),
            summary=[
                _(
                    "Revoke the token “%(name)s” (starts with %(prefix)s…).",
                    name=token.name,
                    prefix=token.prefix,
                ),
                _(
                    "Programs that use it can no longer use the API. A revoked token never "
                    "works again; you can create a new one at any time."
                ),
            ],
            confirm_label=_("Revoke"),
        )
    api_tokens.revoke(actor, token, ip=client_ip())
    db.session.commit()
    flash(_("The token was revoked; it no longer works."), "success")
    return redirect(url_for("account.tokens"))


@bp.route("/misuse", methods=["GET", "POST"])
@login_required
def misuse():
    """R-63: report suspected misuse. Every session of the account ends at once, this one
    too, and the provider's staff are alerted at once."""
    actor = current_actor()
    if not can_report_misuse(actor):
        abort(403, _("Stop viewing as the customer first: misuse is reported by the user."))
    form = MisuseForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("account/misuse.html", form=form), status
    try:
        accounts.report_misuse(
            actor,
            form.details.data or "",
            ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except NotAllowed as exc:
        abort(403, str(exc))
    except PortalError as exc:
        show_error(form, exc, "details")
        return render_template("account/misuse.html", form=form), 422
    db.session.commit()
    end_browser_session()
    flash(
        _(
            "Thank you. Every session of your account was ended and the provider was alerted. "
            "If someone may know your password, choose a new one with “Forgot your password?”."
        ),
        "warning",
    )
    return redirect(url_for("auth.login"))
